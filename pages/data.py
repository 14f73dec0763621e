"""Data: the artifact sets on this machine (switch this session between them), and building a new set from the
server's data folder, including files uploaded here. Library: recsys/datasets.py."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from ui.common import md, root, show_quality, use_set
from ui.router import require_router
from recsys import datasets as ds

require_router()  # before anything draws: a page running alone goes through app.py

BUILT = "data_last_build"        # session: path of the set this session just built (its report stays shown)
UPLOADS = "data_saved_uploads"   # session: upload file_id -> saved name (an upload is saved once)
CLI = "python -m recsys build --input {data}/FILE.csv --artifacts {stores}/NAME"


def sets_section() -> None:
    """Every set with its state, the one this session serves, a switch and a hash check."""
    st.subheader("Artifact sets on this machine")
    sets = ds.list_sets()
    here = Path(root()).resolve()
    table = pd.DataFrame([{"serving": "▶" if s.path.resolve() == here else "", **s.row()} for s in sets])
    st.dataframe(table, hide_index=True, width="stretch", key="data_sets_table",
                 column_config={"events": st.column_config.NumberColumn("events", format="localized")})
    st.caption(f"Stores are the folders under {md(ds.stores_dir())} (setting `RECSYS_STORES`); the default set is "
               f"`RECSYS_ARTIFACTS` or `artifacts/`. *stages* names any stage that is not built or whose files "
               f"no longer match the sizes its manifest recorded.")
    names = [s.name for s in sets]
    current = next((i for i, s in enumerate(sets) if s.path.resolve() == here), 0)
    left, mid, right = st.columns([3, 1, 1], vertical_alignment="bottom")
    pick = left.selectbox("Serve this browser session from", names, index=current, key="data_pick")
    chosen = sets[names.index(pick)]
    if mid.button("Switch", key="data_switch", disabled=chosen.path.resolve() == here):
        if chosen.stages.get("events") is not None:
            st.error(f"{md(chosen.name)} has no usable events stage ({md(chosen.stages['events'])}); build it "
                     f"first.")
        else:
            use_set(None if chosen.kind == "default" else chosen.path)
            st.rerun()
    if right.button("Verify file hashes", key="data_verify"):
        with st.spinner("Hashing every file of the set..."):
            checked = ds.describe_set(chosen.path, chosen.name, chosen.kind, hashes=True)
        bad = {s: p for s, p in checked.stages.items() if p}
        if bad:
            st.warning(md("; ".join(f"{s}: {p}" for s, p in bad.items())))
        else:
            st.success(f"Every stage of {md(chosen.name)} is built and every file matches its manifest's hash.")


def upload_section(folder: Path) -> None:
    """Save a browser upload into the data folder (once per upload) under a safe name."""
    up = st.file_uploader(f"Upload a file into the data folder (up to {ds.MAX_UPLOAD_MB} MB)",
                          type=["csv", "gz", "zip", "xlsx", "xlsm"], key="data_upload")
    if up is None:
        return
    saved = st.session_state.setdefault(UPLOADS, {})
    if up.file_id not in saved:
        try:
            saved[up.file_id] = ds.save_upload(up.name, up, folder)
        except (ds.DatasetError, OSError) as exc:
            st.error(md(ds.explain(exc)))
            return
    st.success(f"Saved as {md(saved[up.file_id])} in the data folder: pick it below to build it.")


def build_section() -> None:
    """Pick data-folder files and a name, build them with a progress bar; the new set's quality report."""
    folder = ds.data_dir()
    st.subheader("Build a new set from the data folder")
    st.caption(f"Data folder: {md(folder)} (setting `RECSYS_DATA_DIR`; only files inside it can be built). "
               f"REES46 CSV (plain, .csv.gz or a .zip with one CSV), UCI Online Retail (.csv or .xlsx) and "
               f"RetailRocket files are recognised from their header. The build runs here and blocks this page "
               f"until it is done; large files (millions of rows) are better built with the CLI, then listed "
               f"here:")
    st.code(CLI.format(data=folder, stores=ds.stores_dir()), language="bash")
    upload_section(folder)
    files = ds.list_data_files(folder)
    if not files:
        st.info("The data folder has no data files yet: copy files into it on the server, or upload one above.")
        return
    st.dataframe(pd.DataFrame(files), hide_index=True, width="stretch", key="data_files_table")
    picked = st.multiselect("Files to build (one store: files with the same header)", [f["file"] for f in files],
                            key="data_files")
    name = st.text_input("Name of the new set", key="data_name", max_chars=63,
                         placeholder="letters, digits, - _ .")
    if st.button("Build", type="primary", key="data_build", disabled=not picked or not name.strip()):
        run_build(name, picked)


def run_build(name: str, files: list[str]) -> None:
    """Build with a progress bar; one plain line on failure (the CLI's), the quality report on success."""
    with st.status(f"Building {md(name)}...", expanded=True) as status:
        bar = st.progress(0.0, text="starting")
        try:
            target = ds.build_set(name, files, progress=lambda f, m: bar.progress(min(max(f, 0.0), 1.0), text=md(m)))
        except Exception as exc:  # the user sees one line, like the CLI's, never a traceback
            status.update(label="The build failed: nothing was added", state="error")
            st.error(md(ds.explain(exc)))
            return
        status.update(label=f"Built {md(target.name)}", state="complete", expanded=False)
    st.session_state[BUILT] = str(target)
    st.rerun()  # the new set joins the list, its report shows above


def built_section() -> None:
    """The quality report of the set this session built last, and a button to serve it."""
    path = st.session_state.get(BUILT)
    if not path or not (Path(path) / "events").is_dir():
        return
    from recsys.ingest.stage import load_quality
    st.subheader(f"Quality report of {md(Path(path).name)}")
    try:
        show_quality(load_quality(path), "data-built")
    except Exception as exc:  # a damaged report is a message too
        st.error(md(ds.explain(exc)))
    if Path(root()).resolve() != Path(path).resolve() and st.button("Serve this session from it",
                                                                     key="data_use_built"):
        use_set(Path(path))
        st.rerun()


st.title("🗂️ Data")
sets_section()
built_section()
build_section()
