"""Kernels forked from a server's kernel zygote, without a hub (``kernelzygote.py``).

The zygote must be forked by a process with a single thread, so each scenario runs in a new
Python process (``DRIVER``): it forks the zygote as a trainee's server does, then drives kernels
through jupyter_client's own kernel manager with the ``atelier-zygote`` provisioner, as Jupyter
Server does. The hub's version (the trainee's account, limits, control groups) is
``tests/servers/test_kernel_zygote.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

DRIVER = textwrap.dedent(
    """
    import json, os, sys, time
    from atelier.hub_config.servers import kernelzygote

    zygote = kernelzygote.start()
    from jupyter_client.manager import KernelManager
    from jupyter_client.provisioning import KernelProvisionerFactory

    KernelProvisionerFactory.instance().default_provisioner_name = kernelzygote.NAME
    facts = {"zygote": zygote.pid}

    def run(client, code, timeout=30):
        msg_id = client.execute(code)
        out = []
        while True:
            msg = client.get_iopub_msg(timeout=timeout)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                out.append(msg["content"]["ename"])
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return "".join(out).strip()

    def ppid(pid):
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])

    def alive(pid):
        try:
            with open(f"/proc/{pid}/stat") as stat:
                return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
        except FileNotFoundError:
            return False

    def gone(pid, timeout=20):
        deadline = time.monotonic() + timeout
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        return not alive(pid)

    work = sys.argv[1]
    with open(os.path.join(work, "helper.py"), "w") as helper:
        helper.write("ANSWER = 42\\n")
    # Over Unix sockets, as a trainee's server runs its kernels (atelier.processes.kernelsockets).
    connection = os.path.join(work, "kernel-zygote.json")
    km = KernelManager(kernel_name="python3", transport="ipc", connection_file=connection)
    km.start_kernel(cwd=work, env=dict(os.environ, ZYGOTE_TEST="seen"))
    client = km.client()
    client.start_channels()
    client.wait_for_ready(timeout=60)
    pid = int(run(client, "import os; print(os.getpid())"))
    facts["provisioner"] = type(km.provisioner).__name__
    with open(connection) as info_file:
        info = json.load(info_file)
    facts["transport"] = info["transport"]
    channels = ("shell", "iopub", "stdin", "control", "hb")
    facts["channels"] = sorted(f"{info['ip']}-{info[name + '_port']}" for name in channels)
    import psutil
    facts["unix"] = sorted(c.laddr for c in psutil.Process(pid).net_connections("unix") if c.laddr)
    facts["parent"] = ppid(pid)
    with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
        facts["cmdline"] = cmdline.read().decode(errors="replace")
    facts["env"] = run(client, "print(os.environ['ZYGOTE_TEST'])")
    facts["cwd"] = run(client, "print(os.getcwd())")
    facts["import_beside"] = run(client, "import helper; print(helper.ANSWER)")
    facts["stdin"] = run(client, "print(os.readlink('/proc/self/fd/0'))")
    facts["own_session"] = run(client, "print(os.getsid(0) == os.getpid())")
    # ipywidgets was imported before the kernel existed: the widget manager's targets must be there.
    facts["widget_targets"] = run(
        client,
        "import comm; print(sorted(t for t in comm.get_comm_manager().targets if 'widget' in t))",
    )

    # Interrupt: a running cell stops with KeyboardInterrupt.
    msg_id = client.execute("import time; time.sleep(60)")
    time.sleep(1.5)
    started = time.monotonic()
    km.interrupt_kernel()
    while True:
        msg = client.get_iopub_msg(timeout=30)
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "error":
            facts["interrupt"] = msg["content"]["ename"]
            break
    facts["interrupt_seconds"] = time.monotonic() - started
    # ipykernel aborts requests that arrive just after an error (stop_on_error): let it pass.
    time.sleep(1)
    facts["after_interrupt"] = run(client, "print(6 * 7)")

    # Restart: a new process, nothing of the old state, the old one gone.
    run(client, "left_behind = 1")
    km.restart_kernel(now=False)
    client.wait_for_ready(timeout=60)
    new_pid = int(run(client, "import os; print(os.getpid())"))
    facts["restart_new_pid"] = new_pid != pid
    facts["restart_old_gone"] = gone(pid)
    facts["restart_parent"] = ppid(new_pid)
    facts["restart_state"] = run(client, "print(left_behind)")

    # Shutdown: the kernel and a process it started are gone.
    child = int(run(client, "import subprocess; print(subprocess.Popen(['sleep', '300']).pid)"))
    client.stop_channels()
    km.shutdown_kernel()
    facts["shutdown_gone"] = gone(new_pid)
    facts["shutdown_child_gone"] = gone(child)

    # A kernel command that is not ipykernel_launcher starts the stock way (a child of ours).
    km2 = KernelManager(kernel_name="python3")
    km2.kernel_spec.argv = [sys.executable, "-m", "ipykernel", "-f", "{connection_file}"]
    km2.start_kernel(cwd=work)
    facts["other_command_parent_is_us"] = ppid(km2.provisioner.pid) == os.getpid()
    km2.shutdown_kernel(now=True)
    print("FACTS " + json.dumps(facts))
    """
)


@pytest.fixture(scope="module")
def facts(tmp_path_factory):
    work = tmp_path_factory.mktemp("zygote")
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, str(work)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=work,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("FACTS ")]
    assert lines, done.stdout[-2000:] + done.stderr[-4000:]
    found = json.loads(lines[-1][len("FACTS ") :])
    found["work"] = str(work)
    return found


def test_a_kernel_is_forked_by_the_zygote_and_shown_as_a_kernel(facts):
    assert facts["provisioner"] == "ZygoteProvisioner"
    assert facts["parent"] == facts["zygote"]
    assert facts["cmdline"].split("\0")[1:3] == ["-m", "ipykernel_launcher"]


def test_a_forked_kernel_listens_on_the_unix_sockets_its_connection_file_names(facts):
    # No TCP port for the kernel's channels: none another process can take during a burst.
    assert facts["transport"] == "ipc"
    assert set(facts["channels"]) <= set(facts["unix"])


def test_a_forked_kernel_gets_the_kernel_managers_directory_environment_and_stdin(facts):
    assert facts["env"] == "seen"
    assert facts["cwd"] == facts["work"]
    # A module beside the notebook imports, as with `python -m ipykernel_launcher`.
    assert facts["import_beside"] == "42"
    assert facts["stdin"] == os.devnull
    assert facts["own_session"] == "True"


def test_a_forked_kernel_answers_the_widget_managers_comms(facts):
    # Registered by ipywidgets when imported inside a kernel; the zygote imported it before.
    assert facts["widget_targets"] == "['jupyter.widget', 'jupyter.widget.control']"


def test_interrupt_stops_a_forked_kernels_cell_and_the_kernel_lives_on(facts):
    assert facts["interrupt"] == "KeyboardInterrupt"
    assert facts["interrupt_seconds"] < 20
    assert facts["after_interrupt"] == "42"


def test_restart_forks_a_fresh_kernel_and_ends_the_old_one(facts):
    assert facts["restart_new_pid"] and facts["restart_old_gone"]
    assert facts["restart_parent"] == facts["zygote"]
    assert facts["restart_state"] == "NameError"


def test_shutdown_ends_the_kernel_and_the_processes_it_started(facts):
    assert facts["shutdown_gone"] and facts["shutdown_child_gone"]


def test_another_kernel_command_starts_as_a_new_process(facts):
    assert facts["other_command_parent_is_us"]


def test_only_ipykernel_launcher_of_this_python_without_start_up_variables_is_forked():
    from atelier.hub_config.servers.kernelzygote import kernel_arguments

    command = [sys.executable, "-m", "ipykernel_launcher", "-f", "/x/kernel.json"]
    assert kernel_arguments(command, dict(os.environ)) == ["-f", "/x/kernel.json"]
    assert kernel_arguments(["/usr/bin/python3", *command[1:]], None) is None
    assert kernel_arguments([sys.executable, "-m", "ipykernel", "-f", "k.json"], None) is None
    assert kernel_arguments(command, dict(os.environ, PYTHONPATH="/elsewhere")) is None


def test_a_long_title_is_shown_whole_once_the_environment_is_replaced():
    """A kernel's command line longer than the server's it was forked from is not cut."""
    code = (
        "import os; from atelier.hub_config.servers.kernelzygote import retitle\n"
        "os.environ.clear(); os.environ['KEPT'] = 'yes'\n"
        "long = ['/some/python', '-m', 'ipykernel_launcher', '-f', '/x/' + 'k' * 1000 + '.json']\n"
        "print(retitle(long, spill=True), os.environ['KEPT'])\n"
        "print(open('/proc/self/cmdline', 'rb').read().rstrip(b'\\0').decode())\n"
    )
    env = {"PATH": os.environ.get("PATH", ""), "FILLER": "f" * 2000}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    lines = done.stdout.splitlines()
    assert lines[:1] == ["True yes"], done.stderr
    assert lines[1] == "/some/python -m ipykernel_launcher -f /x/" + "k" * 1000 + ".json"
