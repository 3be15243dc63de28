"""A cohort that wrote reflections, for the peer review tests of the server and browser tiers.

Four trainees of cohort ``p`` (one French) and their facilitator, and cohort ``q`` with a trainee
and a facilitator of its own (who must see nothing of ``p``). Trainees fetch and submit through the
real exchange with nbgrader's own commands run as their Unix accounts (what JupyterLab's
assignment list calls), their reflection written in the answers file as the journal widget
writes it; then ``atelier collect``. Nothing here knows about pytest.
"""

from __future__ import annotations

import json
import pwd
import subprocess
from pathlib import Path

from harness import BIN, FIXTURES

WORKBOOK = FIXTURES / "peerreview" / "01-reflect"
ROSTER = """username,full name,email,institution,country,language,role,cohort
ana,Ana Lopes,ana@example.org,University A,Kenya,en,trainee,p
ben,Ben Osei,ben@example.org,University A,Ghana,en,trainee,p
chi,Chioma Zébé,chi@example.org,Université B,Bénin,fr,trainee,p
dan,Dan Kariuki,dan@example.org,University A,Kenya,en,trainee,p
fay,Fay Mbeki,fay@example.org,University A,Ghana,en,facilitator,p
quinn,Quinn Abebe,quinn@example.org,University C,Ethiopia,en,trainee,q
fred,Fred Tchamba,fred@example.org,Université B,Cameroun,fr,facilitator,q
"""
#: What each trainee of p writes (chi's has markup that must stay text on every page).
REFLECTIONS = {
    "ana": "Ana plans an audio lesson with slides sent the day before.",
    "ben": "Ben records short videos at 360p for download on campus Wi-Fi.",
    "chi": "Chi envoie un PDF léger <script>alert('x')</script> & un quiz par SMS.",
    "dan": "Dan runs a voice call and keeps the camera off for everyone.",
}
LANGUAGE = {"ana": "en", "ben": "en", "chi": "fr", "dan": "en"}
SERVICE = "/services/atelier-peer/"


def as_trainee(hub, username: str, *command: str) -> str:
    """Run ``command`` as the trainee's account in their home, with the hub's trainee config."""
    entry = pwd.getpwnam(hub.account(username))
    env = {
        "HOME": entry.pw_dir,
        "USER": entry.pw_name,
        "PATH": f"{BIN}:/usr/bin:/bin",
        "JUPYTER_CONFIG_PATH": str(Path(hub.settings["grading"]["exchange_root"]) / ".jupyter"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "LANG": "C.UTF-8",
    }
    done = subprocess.run(
        ["/usr/sbin/runuser", "-u", entry.pw_name, "--", *command],
        cwd=entry.pw_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, f"{command}: {done.stdout}\n{done.stderr}"
    return done.stdout


def write_reflection(hub, username: str, folder: Path, text: str) -> None:
    """The answers file the journal widget writes beside the notebook, as the trainee's file."""
    document = {
        "format": "atelier-answers",
        "version": 1,
        "answers": {
            "pr-reflect": {"value": {"a": text}, "kind": "journal", "saved": "2026-12-01T10:00:00Z"}
        },
    }
    code = "import json, sys; open(sys.argv[1], 'w').write(sys.argv[2])"
    as_trainee(
        hub,
        username,
        str(BIN / "python"),
        "-c",
        code,
        str(folder / ".atelier-answers.json"),
        json.dumps(document),
    )


def submit_reflections(hub, cohort: str = "p", reflections: dict | None = None) -> None:
    """Release the workbook to ``cohort``, have each trainee submit, collect."""
    hub.atelier("release", str(WORKBOOK), f"--cohort={cohort}")
    for username, text in (reflections or REFLECTIONS).items():
        assignment = f"reflect-{LANGUAGE[username]}"
        as_trainee(
            hub,
            username,
            str(BIN / "nbgrader"),
            "fetch_assignment",
            f"--course={cohort}",
            assignment,
        )
        folder = Path(pwd.getpwnam(hub.account(username)).pw_dir) / cohort / assignment
        write_reflection(hub, username, folder, text)
        as_trainee(
            hub, username, str(BIN / "nbgrader"), "submit", f"--course={cohort}", str(folder)
        )
    hub.atelier("collect", f"--cohort={cohort}", "reflect")


def record(hub, cohort: str = "p", workbook: str = "reflect") -> dict:
    """The peer review's record, as root reads it."""
    path = Path(hub.settings["hub"]["state_dir"]) / "peerreview" / cohort / f"{workbook}.json"
    return json.loads(path.read_text("utf-8"))


def reviews_by(hub, username: str, rec: dict) -> list[tuple[str, dict]]:
    """The (id, review) pairs given to ``username``."""
    account = hub.account(username)
    return [(rid, r) for rid, r in sorted(rec["reviews"].items()) if r["reviewer"] == account]


def author_of(hub, rec: dict, review: dict) -> str:
    """The username whose submission ``review`` is of."""
    account = rec["submissions"][review["submission"]]["author"]
    return account.removeprefix(hub.prefix)
