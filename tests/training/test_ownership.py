"""One training process per run folder (an OS lock a killed process releases by itself), and a new run
never silently replaces another run's files. The lock is tried between two real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import TINY, cli_flags, tiny_config
from pix2pix.cli import main
from pix2pix.errors import ConfigError
from pix2pix.training import resume, train
from pix2pix.training.ownership import RunFolderInUse

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="fcntl locks and POSIX signals")
SRC = str(Path(__file__).resolve().parents[2] / "src")


def test_a_second_process_stops_at_once_and_a_killed_holder_leaves_no_stale_lock(tmp_path, synthetic_root, capsys):
    run = tmp_path / "run"
    settings = {**TINY, "epochs": 10_000, "max_items": 4, "latest_every": 0, "save_every": 1}  # runs until killed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, *sys.path]), "OMP_NUM_THREADS": "1"}
    holder = subprocess.Popen([sys.executable, "-m", "pix2pix", "train", "--data", str(synthetic_root), "--out",
                               str(run), *cli_flags(settings)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 120
        while not (run / "latest.pt").exists():  # the lock is held from the start; wait for a checkpoint too
            assert holder.poll() is None and time.monotonic() < deadline, "the first run did not start"
            time.sleep(0.05)
        lines_before = (run / "losses.jsonl").read_text().count("\n")

        started = time.monotonic()
        assert main(["train", "--data", str(synthetic_root), "--out", str(run), *cli_flags(TINY)]) == 2
        err = capsys.readouterr().err
        assert err == f"error: run folder {run} is in use by pix2pix train, pid {holder.pid} on {os.uname()[1]}; " \
                      "wait for that run to end (or stop it), or choose another --out\n"
        with pytest.raises(RunFolderInUse, match=f"pid {holder.pid}"):
            resume(run, {"epochs": 20_000})
        assert time.monotonic() - started < 5  # at once: no data was loaded, nothing was built
        assert holder.poll() is None  # the first run goes on, its log untouched by the second
        assert (run / "losses.jsonl").read_text().count("\n") >= lines_before
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
    # the kernel released the killed holder's lock: the folder can be used again at once
    step = json.loads((run / "losses.jsonl").read_text().splitlines()[-1])["step"]
    assert step > 0
    train(tiny_config(synthetic_root, run), progress=False, overwrite=True)
    assert (run / "latest.pt").exists()


def another_runs_files(folder: Path) -> dict[str, bytes]:
    """A run folder as a run killed after its second numbered checkpoint leaves it: no latest.pt."""
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints" / "epoch_0002.pt").write_bytes(b"weights of two epochs")
    (folder / "losses.jsonl").write_text("".join(json.dumps({"step": i}) + "\n" for i in range(1, 121)))
    (folder / "notes.txt").write_text("the user's own file")
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_new_run_over_another_runs_files_is_refused_unless_overwrite(tmp_path, synthetic_root, capsys):
    run = tmp_path / "run"
    before = another_runs_files(run)
    with pytest.raises(ConfigError, match=r"already holds a run \(checkpoints/, losses.jsonl\); continue it with "
                                          r"--resume .* replace it with --overwrite"):
        train(tiny_config(synthetic_root, run), progress=False)
    assert {str(p.relative_to(run)): p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"} \
        == before  # nothing changed: not the log, not the checkpoint
    assert main(["train", "--data", str(synthetic_root), "--out", str(run), *cli_flags(TINY)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--overwrite"]) == 2
    assert "cannot be combined with --resume" in capsys.readouterr().err

    assert main(["train", "--data", str(synthetic_root), "--out", str(run), *cli_flags(TINY), "--overwrite"]) == 0
    assert not (run / "checkpoints" / "epoch_0002.pt").exists()  # the earlier run's files are gone ...
    assert (run / "losses.jsonl").read_text().count("\n") < 120 and (run / "latest.pt").exists()
    assert (run / "notes.txt").read_text() == "the user's own file"  # ... and nothing else


def test_a_folder_where_a_start_failed_before_any_step_is_not_another_run(tmp_path):
    from pix2pix.training import RunFolder

    run = RunFolder(tmp_path / "run")
    run.path.mkdir()
    (run.config).write_text("{}")  # written before the data loaded, then the start failed
    run.checkpoints.mkdir()  # empty
    run.check_new_run()  # nothing to refuse
    assert run.previous_run() == []
    run.losses.write_text("")
    assert run.previous_run() == [run.losses]
