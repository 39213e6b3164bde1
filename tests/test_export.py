"""`hdetach-np export RUN --format csv|tensorboard`: a run's history as a CSV table and as a
TensorBoard event file, read back (with tensorboard's EventAccumulator when installed, else by
reading the TFRecord file with tensorboardX's protobuf classes). The TensorBoard tests are skipped,
with the reason, without tensorboardX (the `export` extra)."""

import csv
import json
import struct

import pytest

from hdetach_np.cli import main
from hdetach_np.training import export
from hdetach_np.training.runs import read_history

TINY = ["--T", "3", "--hidden", "6", "--batch-size", "4", "--n-train", "40", "--n-valid", "8", "--epochs", "2",
        "--iterations-per-epoch", "3", "--anneal-p", "0", "--lr", "0.01", "--quiet"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "run"
    assert main(["train", "copying", *TINY, "--p", "0.5", "--log-paths-every", "2", "--out", str(out)]) == 0
    return out


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_csv_has_one_row_per_record_and_every_value(run_dir, tmp_path, capsys):
    records = read_history(run_dir)
    kinds = {("split" in r, "paths" in r) for r in records}
    assert {(False, False), (True, False), (False, True)} <= kinds, "steps, evaluations and path norms"
    out = tmp_path / "h.csv"
    code, stdout, err = cli(capsys, "export", run_dir, "--format", "csv", "--out", out)
    assert code == 0, err
    assert f"wrote {out}" in stdout
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(records)
    header = list(rows[0])
    assert header[0] == "iteration" and "paths/norms/cell/all" in header and "split" in header
    for row, record in zip(rows, records, strict=True):
        for key, value in export.flatten_record(record).items():
            assert row[key] == str(value), (key, row[key], value)
        missing = set(header) - set(export.flatten_record(record))
        assert all(row[k] == "" for k in missing)


def test_csv_default_path_and_no_overwrite_without_force(run_dir, capsys):
    target = run_dir / "history.csv"
    assert not target.exists()
    assert cli(capsys, "export", run_dir, "--format", "csv")[0] == 0
    first = target.read_text()
    target.write_text("mine\n")
    code, _, err = cli(capsys, "export", run_dir / "history.jsonl", "--format", "csv")
    assert code == 1 and "exists; pass --force" in err and len(err.strip().splitlines()) == 1
    assert target.read_text() == "mine\n", "an existing file is kept"
    assert cli(capsys, "export", run_dir, "--format", "csv", "--force")[0] == 0
    assert target.read_text() == first
    target.unlink()


def test_bad_usage(run_dir, tmp_path, capsys):
    code, _, err = cli(capsys, "export", tmp_path / "nothing", "--format", "csv")
    assert code == 2 and "no history at" in err
    with pytest.raises(SystemExit):
        main(["export", str(run_dir), "--format", "xlsx"])
    with pytest.raises(ValueError, match="format must be one of csv, tensorboard"):
        export.export_history(run_dir, "xlsx")


def _read_scalars(event_file) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value), ...]} of a TensorBoard event file."""
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:
        return _read_scalars_tfrecord(event_file)
    acc = EventAccumulator(str(event_file))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _read_scalars_tfrecord(event_file) -> dict[str, list[tuple[int, float]]]:
    """The same from the file's records: length (u64), its crc (u32), an Event protobuf, its crc (u32)."""
    from tensorboardX.proto.event_pb2 import Event

    data, pos, out = event_file.read_bytes(), 0, {}
    while pos < len(data):
        (length,) = struct.unpack("<Q", data[pos:pos + 8])
        event = Event.FromString(data[pos + 12:pos + 12 + length])
        pos += 12 + length + 4
        for value in event.summary.value:
            if value.HasField("simple_value"):
                out.setdefault(value.tag, []).append((event.step, value.simple_value))
    return out


def test_tensorboard_event_file_reads_back_as_the_history(run_dir, tmp_path, capsys):
    pytest.importorskip("tensorboardX", reason='tensorboardX is not installed: pip install -e ".[export]"')
    folder = tmp_path / "tb"
    code, stdout, err = cli(capsys, "export", run_dir, "--format", "tensorboard", "--out", folder)
    assert code == 0, err
    files = list(folder.glob("events.out.tfevents.*"))
    assert len(files) == 1 and f"wrote {files[0]}" in stdout
    got = _read_scalars(files[0])
    expected = {}
    for record in read_history(run_dir):
        for tag, value in export.scalars(record).items():
            expected.setdefault(tag, []).append((record["iteration"], value))
    assert {"train/loss", "train/accuracy", "valid/loss", "valid/accuracy", "paths/cell/all", "paths/h/all"} <= set(got)
    assert set(got) == set(expected)
    for tag, points in expected.items():  # event files store float32
        assert [s for s, _ in got[tag]] == [s for s, _ in points], tag
        assert [v for _, v in got[tag]] == pytest.approx([v for _, v in points], rel=1e-6), tag
    assert _read_scalars_tfrecord(files[0]) == got, "both readers see the same file"

    code, _, err = cli(capsys, "export", run_dir, "--format", "tensorboard", "--out", folder)
    assert code == 1 and "pass --force" in err
    assert list(folder.glob("events.out.tfevents.*")) == files
    assert cli(capsys, "export", run_dir, "--format", "tensorboard", "--out", folder, "--force")[0] == 0
    assert len(list(folder.glob("events.out.tfevents.*"))) == 1


def test_tensorboard_without_tensorboardx_says_how_to_install(run_dir, tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import fails as if not installed
    code, _, err = cli(capsys, "export", run_dir, "--format", "tensorboard", "--out", tmp_path / "tb")
    assert code == 1 and 'pip install -e ".[export]"' in err
    assert not (tmp_path / "tb").exists()


def test_scalars_of_each_record_kind():
    assert export.scalars({"iteration": 3, "epoch": 1, "loss": 0.5, "clipped": True, "p": 0.25}) == \
        {"train/loss": 0.5, "train/clipped": 1.0, "train/p": 0.25}
    assert export.scalars({"iteration": 3, "epoch": 1, "split": "test", "loss": 1.0, "accuracy": 0.5,
                           "best": False, "seconds": 2}) == \
        {"test/loss": 1.0, "test/accuracy": 0.5, "test/best": 0.0, "test/seconds": 2.0}
    paths = {"iteration": 4, "paths": {"iteration": 4, "norms": {"h": {"all": 2.0}}}}
    assert export.scalars(paths) == {"paths/h/all": 2.0}
    assert export.scalars({"iteration": 5, "event": "diverged", "message": "nan"}) == {}
    assert json.loads(json.dumps(export.flatten_record({"a": {"b": 1}, "c": 2}))) == {"a/b": 1, "c": 2}
