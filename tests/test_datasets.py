"""recsys.datasets: listing the artifact sets, confining builds to the data folder, building into a temporary
folder renamed into place, uploads; and .gz / .zip inputs of every store format."""
from __future__ import annotations

import gzip
import io
import shutil
import zipfile
from contextlib import redirect_stderr
from pathlib import Path

import pandas as pd
import pytest

from recsys import datasets as ds
from recsys.ingest.stage import build_events
from tests.stores import RR_EVENTS, events_of, write_uci_csv, write_uci_xlsx

DEMO_HEADER = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
DEMO_ROW = "2019-10-01 00:00:0{s} UTC,view,{p},2053013555631882655,electronics.smartphone,acme,10.5,{u},s{u}"


def rees46_csv(path: Path, n: int = 3) -> Path:
    path.write_text("\n".join([DEMO_HEADER] + [DEMO_ROW.format(s=i, p=100 + i, u=i) for i in range(n)]) + "\n")
    return path


@pytest.fixture()
def places(tmp_path, monkeypatch):
    """An empty data folder, stores folder and default set, all under tmp_path."""
    data, stores, default = tmp_path / "data", tmp_path / "stores", tmp_path / "default"
    data.mkdir()
    monkeypatch.setenv(ds.DATA_ENV, str(data))
    monkeypatch.setenv(ds.STORES_ENV, str(stores))
    monkeypatch.setenv("RECSYS_ARTIFACTS", str(default))
    monkeypatch.chdir(tmp_path)  # no artifacts/ of the repository in the listing
    return data, stores, default


# ---- settings and listing ---------------------------------------------------------------------------------------

def test_settings_default_to_artifacts_stores_and_the_repo_data_folder(monkeypatch):
    for env in (ds.DATA_ENV, ds.STORES_ENV, "RECSYS_ARTIFACTS"):
        monkeypatch.delenv(env, raising=False)
    assert ds.default_root() == Path("artifacts") and ds.stores_dir() == Path("artifacts") / "stores"
    assert ds.data_dir() == ds.REPO / "data"


def test_listing_shows_each_set_its_source_and_every_stage_state(places, demo_artifacts):
    data, stores, default = places
    stores.mkdir()
    (stores / "demo").symlink_to(demo_artifacts, target_is_directory=True)   # a complete set
    shutil.copytree(demo_artifacts / "events", stores / "half" / "events")   # only the events stage
    shutil.copytree(demo_artifacts / "events", stores / "damaged" / "events")
    with open(stores / "damaged" / "events" / "events.parquet", "ab") as f:
        f.write(b"x")
    (stores / ".building-new-x1").mkdir()                                     # a build in progress: not a set
    sets = {s.name: s for s in ds.list_sets()}
    assert list(sets) == [f"default ({default})", "damaged", "demo", "half"]
    demo = sets["demo"]
    assert demo.complete and demo.source == "demo" and demo.events > 0
    assert set(demo.stages) == set(ds.stage_names()) and demo.first_event and demo.last_event and demo.built_at
    assert demo.row()["stages"] == "all built and verified" and demo.row()["source"] == "demo store"
    half = sets["half"]
    assert not half.complete and half.stages["events"] is None and "not built" in half.stages["aggregates"]
    assert half.events == demo.events and half.first_event is None  # no aggregates: no stored date span
    assert "events/events.parquet has" in sets["damaged"].stages["events"]
    assert "not built" in sets[f"default ({default})"].stages["events"]  # nothing built there


def test_a_hash_check_finds_changed_bytes_that_sizes_miss(places, demo_artifacts):
    _, stores, _ = places
    shutil.copytree(demo_artifacts / "events", stores / "s" / "events")
    path = stores / "s" / "events" / "events.parquet"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    assert ds.describe_set(stores / "s", "s", "store").stages["events"] is None
    assert "was changed" in ds.describe_set(stores / "s", "s", "store", hashes=True).stages["events"]


# ---- confinement to the data folder -----------------------------------------------------------------------------

def test_only_files_inside_the_data_folder_can_be_named(places, tmp_path):
    data, _, _ = places
    rees46_csv(data / "ok.csv")
    (data / "sub").mkdir()
    rees46_csv(data / "sub" / "nested.csv")
    outside = rees46_csv(tmp_path / "secret.csv")
    (data / "link.csv").symlink_to(outside)                       # a symlink leading out
    (data / "linkdir").symlink_to(tmp_path, target_is_directory=True)
    (data / "inner.csv").symlink_to(data / "ok.csv")              # a symlink that stays inside is fine
    (data / "notes.txt").write_text("x")
    assert ds.resolve_data_file("ok.csv") == (data / "ok.csv").resolve()
    assert ds.resolve_data_file("sub/nested.csv") == (data / "sub" / "nested.csv").resolve()
    assert ds.resolve_data_file("inner.csv") == (data / "ok.csv").resolve()
    for bad, why in [(str(outside), "inside the data folder"), ("/etc/passwd", "inside the data folder"),
                     ("../secret.csv", "'..'"), ("sub/../../secret.csv", "'..'"), ("link.csv", "outside"),
                     ("linkdir/secret.csv", "outside"), ("missing.csv", "no such file"), ("notes.txt", "not a data file"),
                     ("sub", "no such file"), ("", "no file"), ("a\x00.csv", "no file"), ("C:/x.csv", "inside")]:
        with pytest.raises(ds.DatasetError, match=why):
            ds.resolve_data_file(bad)
    listed = [f["file"] for f in ds.list_data_files()]
    assert listed == ["inner.csv", "ok.csv", "sub/nested.csv"]  # not the links out, not the .txt


def test_set_names_are_checked_and_never_reused(places):
    _, stores, _ = places
    for bad in ("", "../x", "a/b", ".hidden", "x" * 64, "name with space", "..", "/abs"):
        with pytest.raises(ds.DatasetError, match="not a set name"):
            ds.check_set_name(bad)
    (stores / "taken").mkdir(parents=True)
    with pytest.raises(ds.DatasetError, match="already exists"):
        ds.check_set_name("taken")
    assert ds.check_set_name("oct-2019_v2.1") == stores / "oct-2019_v2.1"


def test_uploads_get_a_safe_unused_name_inside_the_data_folder(places):
    data, _, _ = places
    assert ds.safe_upload_name("../../etc/x.csv") == "x.csv"
    assert ds.safe_upload_name("C:\\Users\\me\\Oct 2019 (1).CSV.GZ") == "Oct_2019_1.csv.gz"  # readers match .gz
    assert ds.safe_upload_name("..csv") == "upload.csv"
    with pytest.raises(ds.DatasetError, match="not a data file"):
        ds.safe_upload_name("evil.sh")
    assert ds.save_upload("../a.csv", b"1") == "a.csv"
    assert ds.save_upload("a.csv", io.BytesIO(b"2")) == "a-2.csv"  # never overwrites
    assert (data / "a.csv").read_bytes() == b"1" and (data / "a-2.csv").read_bytes() == b"2"
    assert sorted(p.name for p in data.iterdir()) == ["a-2.csv", "a.csv"]  # no temp file left


def test_the_upload_limit_the_page_states_is_the_servers():
    import tomllib
    from tests.conftest import REPO
    conf = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert conf["server"]["maxUploadSize"] == ds.MAX_UPLOAD_MB


# ---- building into a temporary folder ---------------------------------------------------------------------------

def test_a_build_goes_to_a_temporary_folder_renamed_when_complete(places):
    data, stores, _ = places
    rees46_csv(data / "a.csv")
    seen = {}

    def fake_build(root, paths, progress):
        seen["root"], seen["paths"] = Path(root), paths
        assert Path(root).parent == stores and Path(root).name.startswith(ds.TMP_PREFIX)
        (Path(root) / "events").mkdir()
        progress(1.0, "done")

    target = ds.build_set("new", ["a.csv"], build=fake_build)
    assert target == stores / "new" and (target / "events").is_dir() and not seen["root"].exists()
    assert seen["paths"] == [(data / "a.csv").resolve()]
    assert [p.name for p in stores.iterdir()] == ["new"]


def test_a_killed_builds_temporary_folder_is_swept_but_a_running_ones_kept(places):
    import os
    data, stores, _ = places
    rees46_csv(data / "a.csv")
    dead = _dead_pid()
    (stores / f"{ds.TMP_PREFIX}{dead}-old-x1").mkdir(parents=True)
    (stores / f"{ds.TMP_PREFIX}{os.getpid()}-mine-x2").mkdir()
    ds.build_set("new", ["a.csv"], build=lambda root, paths, progress: None)
    assert sorted(p.name for p in stores.iterdir()) == [f"{ds.TMP_PREFIX}{os.getpid()}-mine-x2", "new"]


def _dead_pid() -> int:
    import subprocess
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_failed_build_leaves_no_half_set(places):
    data, stores, _ = places
    rees46_csv(data / "a.csv")

    def failing(root, paths, progress):
        (Path(root) / "events").mkdir()
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        ds.build_set("new", ["a.csv"], build=failing)
    assert list(stores.iterdir()) == []
    with pytest.raises(ds.DatasetError, match="'..'"):
        ds.build_set("new", ["../a.csv"], build=failing)
    with pytest.raises(ds.DatasetError, match="no file chosen"):
        ds.build_set("new", [], build=failing)


def test_a_bad_file_gives_the_clis_one_line_message_and_no_set(places, capsys):
    from recsys import cli
    data, stores, _ = places
    (data / "bad.csv").write_text("event_time;event_type;product_id\n1;2;3\n")
    with pytest.raises(Exception) as err:
        ds.build_set("bad", ["bad.csv"])
    message = ds.explain(err.value)
    assert "semicolon-separated" in message and "\n" not in message and "Traceback" not in message
    buf = io.StringIO()
    with redirect_stderr(buf):
        code = cli.main(["build", "--input", str((data / "bad.csv").resolve()), "--artifacts", str(stores / "cli")])
    assert code == 2 and buf.getvalue().strip().splitlines()[-1] == f"error: {message}"  # after the progress bar
    assert [p.name for p in stores.iterdir() if p.name != "cli"] == []


def test_an_unexpected_failure_is_named_in_one_line():
    msg = ds.explain(RuntimeError("disk\nfull"))
    assert msg == "unexpected RuntimeError while building: disk full"


# ---- .gz and .zip inputs ----------------------------------------------------------------------------------------

def zipped(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def test_rees46_gz_and_zip_read_like_the_plain_file(tmp_path):
    plain = rees46_csv(tmp_path / "a.csv")
    gz = tmp_path / "a.csv.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    zp = zipped(tmp_path / "a.zip", {"inner/2019-Oct.csv": plain.read_bytes()})
    frames = []
    for i, p in enumerate((plain, gz, zp)):
        build_events(tmp_path / f"o{i}", [p])
        frames.append(events_of(tmp_path / f"o{i}"))
    assert len(frames[0]) == 3 and frames[0].equals(frames[1]) and frames[0].equals(frames[2])


def test_uci_in_a_zip_as_csv_or_xlsx_reads_like_the_plain_file(tmp_path):
    plain = write_uci_csv(tmp_path / "online_retail.csv")
    xlsx = write_uci_xlsx(tmp_path / "Online Retail.xlsx")
    gz = tmp_path / "online_retail.csv.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    inputs = {"plain": plain, "gz": gz, "csvzip": zipped(tmp_path / "r.zip", {"online_retail.csv": plain.read_bytes()}),
              "xlsxzip": zipped(tmp_path / "x.zip", {"Online Retail.xlsx": xlsx.read_bytes(), "__MACOSX/._x": b"m"})}
    out = {}
    for name, p in inputs.items():
        manifest, _ = build_events(tmp_path / name, [p])
        assert manifest["params"]["format"] == "uci", name
        out[name] = events_of(tmp_path / name)
    assert len(out["plain"]) > 0
    for name in ("gz", "csvzip", "xlsxzip"):
        pd.testing.assert_frame_equal(out[name], out["plain"], obj=name)


def test_retailrocket_events_in_a_zip_are_unpacked_under_raw_and_removed(tmp_path, rr_dir):  # noqa: F811
    zp = zipped(tmp_path / "events.zip", {"events.csv": (rr_dir / "events.csv").read_bytes()})
    manifest, _ = build_events(tmp_path / "z", [zp, rr_dir / "item_properties_part1.csv", rr_dir / "category_tree.csv"])
    build_events(tmp_path / "p", [rr_dir / "events.csv"])
    assert manifest["params"]["format"] == "retailrocket"
    pd.testing.assert_frame_equal(events_of(tmp_path / "z"), events_of(tmp_path / "p"))
    assert list((tmp_path / "z" / "raw").iterdir()) == []  # the unpacked copy is gone
    from recsys.ingest.stage import load_quality
    assert load_quality(tmp_path / "z")["files"][0] == str(zp)  # the report names the input, not the copy


@pytest.mark.parametrize("members, why", [
    ({"a.csv": b"x", "b.csv": b"y"}, "exactly one CSV file \\(found 2\\)"),
    ({"../evil.csv": DEMO_HEADER.encode()}, "outside the archive"),
    ({"/abs/evil.csv": DEMO_HEADER.encode()}, "outside the archive"),
    ({}, "exactly one CSV file \\(found 0\\)"),
])
def test_zips_with_several_files_or_escaping_paths_are_refused(tmp_path, members, why):
    from recsys.ingest.reader import IngestError
    zp = zipped(tmp_path / "x.zip", members)
    with pytest.raises(IngestError, match=why):
        build_events(tmp_path / "out", [zp])
    assert not (tmp_path / "out" / "events").exists() and not (tmp_path / "evil.csv").exists()


def test_a_retailrocket_zip_with_several_csvs_is_refused_with_the_zip_message(tmp_path):
    zp = zipped(tmp_path / "rr.zip", {"events.csv": RR_EVENTS.encode(), "category_tree.csv": b"categoryid,parentid\n"})
    with pytest.raises(Exception, match="exactly one CSV"):
        build_events(tmp_path / "out", [zp])
