"""Data page (AppTest): the sets on this machine, switching the session between them, building data-folder files
into a new set with a progress bar and its quality report, one-line errors, nothing outside the data folder."""
from __future__ import annotations

import pytest

from recsys import datasets as ds
from tests.conftest import REPO

PAGE = "pages/data.py"


@pytest.fixture()
def env(demo_artifacts, tmp_path, monkeypatch):
    """The demo build as the default set, an empty stores folder and data folder under tmp_path."""
    data, stores = tmp_path / "data", tmp_path / "stores"
    data.mkdir()
    stores.mkdir()
    monkeypatch.setenv("RECSYS_ARTIFACTS", str(demo_artifacts))
    monkeypatch.setenv(ds.DATA_ENV, str(data))
    monkeypatch.setenv(ds.STORES_ENV, str(stores))
    monkeypatch.chdir(tmp_path)
    return data, stores


def open_page(timeout: float = 180):
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=timeout).run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def sets_table(at):
    return next(d.value for d in at.dataframe if "stages" in d.value.columns).set_index("set")


def test_the_page_lists_the_sets_states_the_limits_and_the_cli(env, demo_artifacts):
    data, stores = env
    at = open_page()
    table = sets_table(at)
    row = table.loc[f"default ({demo_artifacts})"]
    assert row["serving"] == "▶" and row["stages"] == "all built and verified" and row["source"] == "demo store"
    assert any("no data files yet" in i.value for i in at.info)
    uploader = at.get("file_uploader")[0].proto
    assert f"up to {ds.MAX_UPLOAD_MB} MB" in uploader.label
    assert any(f"--input {data}/FILE.csv --artifacts {stores}/NAME" in c.value for c in at.code)
    assert any("better built with the CLI" in c.value for c in at.caption)


def test_switching_serves_the_chosen_set_to_this_session_only(env, uci_artifacts, demo_artifacts):
    _, stores = env
    (stores / "wholesale").symlink_to(uci_artifacts, target_is_directory=True)
    at = open_page()
    at.switch_page("pages/funnel.py").run()  # filters of the demo store, in the session and the URL
    cat = at.selectbox(key="cat").options[1]
    at.selectbox(key="cat").set_value(cat).run()
    assert at.query_params.get("cat") == [cat] or at.query_params.get("cat") == cat
    at.switch_page(PAGE).run()
    at.selectbox(key="data_pick").set_value("wholesale").run()
    at.button(key="data_switch").click().run()
    assert not at.exception and at.session_state["artifacts_set"] == str(stores / "wholesale")
    assert sets_table(at).loc["wholesale", "serving"] == "▶"
    assert not at.query_params.get("cat")  # the previous store's filters are dropped with the switch
    at.switch_page("pages/overview.py").run()
    assert not at.exception and "online\\_retail\\.csv" in at.caption[0].value  # the UCI build's file
    at.switch_page("pages/funnel.py").run()
    assert not at.exception and not at.warning and at.selectbox(key="cat").value == "All categories"
    other = open_page()  # another browser session still gets the default set
    other.switch_page("pages/overview.py").run()
    assert "demo store" in other.caption[0].value
    at.switch_page(PAGE).run()
    at.selectbox(key="data_pick").set_value(f"default ({demo_artifacts})").run()
    at.button(key="data_switch").click().run()
    at.switch_page("pages/overview.py").run()
    assert "artifacts_set" not in at.session_state and "demo store" in at.caption[0].value


def test_building_data_folder_files_adds_a_complete_set_with_its_report(env, tmp_path):
    from recsys.ingest.demo import write_demo_csv
    data, stores = env
    write_demo_csv(data / "tiny.csv", events=3000, seed=3)
    (tmp_path / "outside.csv").write_text("x")
    (data / "escape.csv").symlink_to(tmp_path / "outside.csv")
    at = open_page()
    assert at.multiselect(key="data_files").options == ["tiny.csv"]  # the symlink out is not offered
    at.multiselect(key="data_files").set_value(["tiny.csv"])
    at.text_input(key="data_name").set_value("tiny").run()
    at.button(key="data_build").click().run()
    assert not at.exception and not at.error
    assert [p.name for p in stores.iterdir()] == ["tiny"]  # renamed into place, no temporary folder left
    assert sets_table(at).loc["tiny", "stages"] == "all built and verified"
    assert "Quality report of tiny" in [s.value for s in at.subheader]
    assert len(at.get("plotly_chart")) >= 1
    at.button(key="data_use_built").click().run()
    at.switch_page("pages/overview.py").run()
    assert not at.exception and "tiny\\.csv" in at.caption[0].value


def test_a_bad_file_gives_the_clis_message_and_no_set(env):
    data, stores = env
    (data / "bad.csv").write_text("event_time;event_type;product_id\n1;2;3\n")
    at = open_page()
    at.multiselect(key="data_files").set_value(["bad.csv"])
    at.text_input(key="data_name").set_value("bad").run()
    at.button(key="data_build").click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "semicolon\\-separated" in errors[0] and "Traceback" not in errors[0]
    assert list(stores.iterdir()) == []
    at.text_input(key="data_name").set_value("../up").run()
    at.button(key="data_build").click().run()
    assert "is not a set name" in at.error[0].value.replace("\\", "")


def test_a_set_named_with_markup_stays_text(env, demo_artifacts):
    _, stores = env
    import shutil
    name = "[x](javascript:alert(1))"
    shutil.copytree(demo_artifacts, stores / name, symlinks=True)  # a copy: a link to the default is listed once
    at = open_page()
    at.selectbox(key="data_pick").set_value(name).run()
    at.button(key="data_verify").click().run()
    assert not at.exception
    message = at.success[0].value
    assert "\\[x\\]\\(javascript\\:alert\\(1\\)\\)" in message and "[x](" not in message
