"""Deadline burst: 100 trainees submit within a minute; how soon does each see their feedback?

One command (as root: the sandbox and the trainees' accounts need it):

    /opt/atelier/env/bin/python benchmarks/bench_feedback.py [--trainees 100] [--window 60]

Atelier: a real hub (``atelier start``, configurable-http-proxy, the ``atelier-instant`` service)
with ``--trainees`` trainees (real Unix accounts) in one cohort; a real graded workbook
(``--workbook``, default 07-home-learning, English) released with ``--mode=practice``. Each trainee
has answered in their own copy (a quarter the workbook's answer set, a quarter all right, a
quarter wrong answers, a quarter nothing). At a random moment of the window, each trainee submits
as their trainee server does: a process of their own account submits through the hardened
exchange class (``AtelierSubmit``) and calls the instant grading service with a token of theirs
(scope ``access:services!service=atelier-instant``, the one their server's token has). Their
feedback is visible when the results file in their own feedback folder says ``graded`` (what their
server's ``/atelier/feedback`` reads). Reported: time from the last Submit until every trainee's
feedback is visible, and each trainee's Submit → visible (median, p95, max).

Stock: the same 100 submissions placed in a stock nbgrader exchange, then stock nbgrader's
``collect`` → ``autograde`` → ``generate_feedback`` → ``release_feedback`` (a facilitator's
fastest path to the same feedback), timed from start to end. Every trainee's score is compared
between the two. Accounts (prefix ``t<4 letters>-``) and folders are removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import pwd
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import requests

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO / "tests"))
# The grading benchmark builds submissions the same way: its answer of the author, its wrong one.
from bench_grade import solution_of, wrong_answer  # noqa: E402


def answer_kinds(workbook: Path, language: str) -> dict[str, dict[str, str]]:
    """Four ways of answering (grade id -> source): answer set, right, wrong, nothing."""
    source = nbformat.read(next(workbook.glob(f"*.{language}.ipynb")), as_version=4)
    cells = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source.cells
             if c.metadata.get("nbgrader", {}).get("solution")}  # fmt: skip
    answer_set = json.loads(next((workbook / "answers").glob(f"*.{language}.json")).read_text())
    right = {k: solution_of(v) for k, v in cells.items()}
    wrong = {k: wrong_answer(solution_of(v)) if "def " in v else v for k, v in cells.items()}
    return {"answer-set": answer_set["cells"], "right": right, "wrong": wrong, "nothing": {}}


def filled(released: Path, answers: dict[str, str]):
    """The released notebook with ``answers`` in its answer cells."""
    nb = nbformat.read(released, as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    return nb


# --- Atelier ---------------------------------------------------------------------------------


def bench_service_config(folder: Path, token: str) -> None:
    """A hub config snippet: a service whose token may make tokens for trainees (the benchmark)."""
    folder.mkdir()
    (folder / "zz-bench.py").write_text(
        "c = get_config()  # noqa\n"
        f"c.JupyterHub.services.append({{'name': 'bench', 'api_token': {token!r}}})\n"
        "c.JupyterHub.load_roles.append({'name': 'bench', 'scopes': "
        "['tokens', 'list:users', 'read:services'], 'services': ['bench']})\n"
    )


def submit_as(account: str, home: Path, config_dir: Path, course: str, assignment: str,
              url: str, token: str) -> None:  # fmt: skip
    """In a forked child: become the trainee, submit as their server does, call the service."""
    status = 1
    try:
        entry = pwd.getpwnam(account)
        os.setgroups(os.getgrouplist(account, entry.pw_gid))
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
        for name in ("JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_CONFIG_DIR"):
            os.environ.pop(name, None)
        os.environ.update(HOME=str(home), USER=account, JUPYTER_CONFIG_PATH=str(config_dir))
        os.chdir(home)
        from atelier.hub_config.view.submit import submit_now

        submit_now(str(home), course, assignment)
        target = url.removeprefix("http://")
        connection = http.client.HTTPConnection(target, timeout=60)
        connection.request("POST", f"/services/atelier-instant/submissions/{course}/{assignment}",
                           headers={"Authorization": f"token {token}"})  # fmt: skip
        connection.getresponse().read()
        status = 0
    except BaseException as error:
        print(f"{account}: {type(error).__name__}: {error}", file=sys.stderr)
    finally:
        os._exit(status)


def run_atelier(args, workbook: Path, kinds: dict) -> dict:
    """The burst on a real hub; per trainee (kind, Submit time, visible time, score)."""
    from hubs import running_hub

    from atelier.grading.course import Course, assignment_id, notebook_name
    from atelier.grading.hubconfig import trainee_config_dir
    from atelier.grading.instant.items import read_results
    from atelier.settings import load_settings

    names = [f"p{i:03d}" for i in range(args.trainees)]
    roster = "username,full name,email,institution,country,language,role,cohort\n" + "".join(
        f"{n},Trainee {n},{n}@example.org,U,Kenya,{args.language},trainee,b\n" for n in names
    )
    token = secrets.token_hex(16)
    config_d = Path(tempfile.mkdtemp(prefix="atelier-bench-cfg-"))
    shutil.rmtree(config_d)
    bench_service_config(config_d, token)
    extra = {"hub": {"config_d": str(config_d)},
             "grading": {"instant_processes": args.processes}}  # fmt: skip
    started = time.monotonic()
    with running_hub(extra, roster=roster) as hub:
        print(f"hub with {len(names)} trainees up in {time.monotonic() - started:.0f} s",
              file=sys.stderr)  # fmt: skip
        hub.atelier("release", str(workbook), "--cohort=b", "--mode=practice")
        settings = load_settings(hub.settings_path)
        course = Course.from_settings(settings, "b")
        wid = workbook.name.split("-", 1)[1]
        aid, nb_name = assignment_id(wid, args.language), notebook_name(wid, args.language)
        released = course.outbound / aid / nb_name
        api = f"{hub.url}/hub/api"
        auth = {"Authorization": f"token {token}"}
        service = requests.get(f"{api}/services/atelier-instant", headers=auth, timeout=30)
        url = service.json()["url"]
        kind_names = list(kinds)
        plan = []
        for index, name in enumerate(names):
            account = hub.account(name)
            entry = pwd.getpwnam(account)
            home = Path(entry.pw_dir)
            folder = home / "b" / aid
            folder.mkdir(parents=True)
            kind = kind_names[index % len(kind_names)]
            nbformat.write(filled(released, kinds[kind]), folder / nb_name)
            for path in (home / "b", folder, folder / nb_name):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            made = requests.post(
                f"{api}/users/{name}/tokens",
                headers=auth,
                timeout=30,
                json={"scopes": ["access:services!service=atelier-instant"]},
            )
            plan.append((name, account, home, kind, made.json()["token"]))
        config_dir = trainee_config_dir(settings)
        # What each trainee's submit uses, loaded once before forking (as their server has).
        import atelier.grading.exchange.trainee
        import atelier.hub_config.view.submit  # noqa: F401

        rng = random.Random(args.seed)
        moments = sorted(rng.uniform(0, args.window) for _ in plan)
        rng.shuffle(plan)
        print(f"{len(plan)} trainees submit within {args.window:.0f} s", file=sys.stderr)
        submitted, visible, scores = {}, {}, {}
        children = set()
        start = time.monotonic()
        pending = list(zip(moments, plan, strict=True))
        deadline = start + args.window + 900
        while (pending or len(visible) < len(plan)) and time.monotonic() < deadline:
            now = time.monotonic() - start
            while pending and pending[0][0] <= now:
                _, (name, account, home, kind, user_token) = pending.pop(0)
                submitted[name] = time.monotonic()
                pid = os.fork()
                if pid == 0:
                    submit_as(account, home, config_dir, "b", aid, url, user_token)
                children.add(pid)
            for pid in list(children):
                done, _ = os.waitpid(pid, os.WNOHANG)
                if done:
                    children.discard(pid)
            for name, account, *_ in plan:
                if name in submitted and name not in visible:
                    results = read_results(course.feedback_of(account), aid)
                    if results and results.get("state") in ("graded", "error"):
                        visible[name] = time.monotonic()
                        scores[name] = results.get("score")
            time.sleep(0.05)
        for pid in children:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        log = hub.log_path.read_text(errors="replace")
    latencies = [visible[n] - submitted[n] for n in visible]
    return {
        "trainees": len(plan),
        "visible": len(visible),
        "last_submit_to_all": (max(visible.values()) - max(submitted.values()))
        if len(visible) == len(plan)
        else None,
        "median": statistics.median(latencies) if latencies else None,
        "p95": statistics.quantiles(latencies, n=20, method="inclusive")[-1]
        if len(latencies) > 1
        else None,
        "max": max(latencies) if latencies else None,
        "scores": {name: scores[name] for name in scores},
        "kinds": {name: kind for name, _, _, kind, _ in plan},
        "errors": [line for line in log.splitlines() if "atelier-instant ERROR" in line][:5],
    }


# --- stock nbgrader ------------------------------------------------------------------------------


def run_stock(args, workbook: Path, kinds: dict, students: list[str]) -> dict:
    """Stock collect → autograde → generate_feedback → release_feedback; wall time, scores."""
    root = Path(tempfile.mkdtemp(prefix="atelier-bench-stock-"))
    try:
        course, exchange = root / "course", root / "exchange"
        notebook = next(workbook.glob(f"*.{args.language}.ipynb"))
        aid = notebook.name.split(".")[0] + f"-{args.language}"
        source = course / "source" / aid
        source.mkdir(parents=True)
        shutil.copy(notebook, source / notebook.name)
        for extra in ("data", "images"):
            if (workbook / extra).is_dir():
                shutil.copytree(workbook / extra, source / extra)
        exchange.mkdir(mode=0o777)
        (course / "nbgrader_config.py").write_text(
            "c = get_config()\n"
            f"c.CourseDirectory.root = {str(course)!r}\n"
            "c.CourseDirectory.course_id = 'stock'\n"
            f"c.Exchange.root = {str(exchange)!r}\n"
        )
        env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "ATELIER_NO_IMPORT_FIX": "1"}

        def nbgrader(*words: str) -> float:
            begin = time.monotonic()
            done = subprocess.run([str(BIN / "nbgrader"), *words, "--log-level=ERROR"], cwd=course,
                                  env=env, capture_output=True, text=True)  # fmt: skip
            if done.returncode != 0:
                raise SystemExit(f"nbgrader {' '.join(words)} failed:\n{done.stderr[-3000:]}")
            return time.monotonic() - begin

        nbgrader("generate_assignment", aid, "--force")
        nbgrader("release_assignment", aid, "--force")
        released = course / "release" / aid / notebook.name
        inbound = exchange / "stock" / "inbound"
        kind_names = list(kinds)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S.000000 UTC", time.gmtime())
        for index, student in enumerate(students):
            folder = inbound / f"{student}+{aid}+{stamp}+{secrets.token_hex(4)}"
            folder.mkdir(parents=True)
            kind = kinds[kind_names[index % len(kind_names)]]
            nbformat.write(filled(released, kind), folder / notebook.name)
            (folder / "timestamp.txt").write_text(stamp)
            # What `nbgrader submit` writes beside them; release_feedback needs it (it names the
            # feedback file by a hash of it), and stopped at the first trainee without one.
            (folder / "submission_secret.txt").write_text(secrets.token_hex(64))
        steps = {}
        for step in ("collect", "autograde", "generate_feedback", "release_feedback"):
            forced = ["--force"] if step in ("autograde", "generate_feedback") else []
            steps[step] = nbgrader(step, aid, *forced)
        from nbgrader.api import Gradebook

        with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "stock") as gb:
            scores = {s: gb.find_submission(aid, s).score for s in students}
        return {"steps": steps, "total": sum(steps.values()), "scores": scores}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trainees", type=int, default=100)
    parser.add_argument("--window", type=float, default=60.0, help="Seconds the submits span.")
    parser.add_argument("--workbook", default="07-home-learning")
    parser.add_argument("--language", default="en")
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="Warm grading processes of the cohort (grading.instant_processes).",
    )
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--skip-stock", action="store_true", help="Atelier's side only.")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the sandbox and the trainees' accounts need it")
    workbook = REPO / "workbooks" / args.workbook
    kinds = answer_kinds(workbook, args.language)
    load = os.getloadavg()[0]
    ours = run_atelier(args, workbook, kinds)
    shown = {k: v for k, v in ours.items() if k not in ("scores", "kinds")}
    print("atelier:", json.dumps(shown), file=sys.stderr, flush=True)
    names = sorted(ours["kinds"])
    stock = None if args.skip_stock else run_stock(args, workbook, kinds, names)
    report(args, ours, stock, load)


def report(args, ours: dict, stock: dict | None, load: float) -> None:
    """The table for docs/benchmarks.md, and the raw figures as JSON on standard error."""
    when = time.strftime("%Y-%m-%d %H:%M")
    tail = ours["last_submit_to_all"]
    line = (f"| {when}, load {load:.1f} → {os.getloadavg()[0]:.1f} | {ours['trainees']} in "
            f"{args.window:.0f} s | {_s(tail)} | {_s(ours['median'])} / {_s(ours['p95'])} / "
            f"{_s(ours['max'])} |")  # fmt: skip
    if stock is not None:
        same = sum(1 for n, s in ours["scores"].items() if s is not None
                   and abs(s - stock["scores"].get(n, -1)) < 1e-9)  # fmt: skip
        steps = " + ".join(f"{v:.1f}" for v in stock["steps"].values())
        ratio = stock["total"] / tail if tail else float("nan")
        line += f" {stock['total']:.1f} s ({steps}) | {ratio:.1f}× | {same}/{ours['trainees']} |"
    print(
        "| Run | burst | last Submit → all feedback | Submit → feedback median / p95 / max "
        "| stock collect + autograde + generate_feedback + release_feedback | ratio "
        "| same scores |"
    )
    print(line)
    print(json.dumps({"atelier": {k: v for k, v in ours.items() if k not in ("scores", "kinds")},
                      "stock": stock and {"steps": stock["steps"], "total": stock["total"]}},
                     indent=1), file=sys.stderr)  # fmt: skip
    if ours["errors"]:
        print("service errors:", *ours["errors"], sep="\n  ", file=sys.stderr)


def _s(value) -> str:
    return "—" if value is None else f"{value:.1f} s"


if __name__ == "__main__":
    main()
