"""Store Insights: the Streamlit entry point, a thin router over pages/ (their helpers are in ui/)."""
import streamlit as st

from ui.common import ensure_artifacts, show_error, warm_imports
from ui.router import routed_run, run_page

st.set_page_config(page_title="Store Insights", page_icon="🛒", layout="wide")

PAGES = {
    "Store": [
        st.Page("pages/overview.py", title="Overview", icon="🏠", default=True),
        st.Page("pages/data.py", title="Data", icon="🗂️"),
    ],
    "Explore": [
        st.Page("pages/funnel.py", title="Funnel", icon="🔻"),
        st.Page("pages/temporal.py", title="Temporal", icon="🕒"),
        st.Page("pages/brands_categories.py", title="Brands & categories", icon="🏷️"),
        st.Page("pages/users_sessions.py", title="Users & sessions", icon="👥"),
    ],
    "Customers": [
        st.Page("pages/retention.py", title="Retention", icon="🔁"),
        st.Page("pages/customers.py", title="Customers", icon="💎"),
    ],
    "Affinity": [
        st.Page("pages/affinity.py", title="Affinity network", icon="🕸️"),
    ],
    "Recommend": [
        st.Page("pages/product_explorer.py", title="Product explorer", icon="🔎"),
        st.Page("pages/recommender.py", title="Recommender explorer", icon="🎯"),
    ],
    "Evaluate": [
        st.Page("pages/evaluation.py", title="Offline evaluation", icon="🧪"),
    ],
}

with routed_run():  # pages check it: a page that runs without this router is sent through it
    ensure_artifacts()
    page = st.navigation(PAGES)
    try:
        run_page(page)
    except Exception as exc:  # a page error is shown as a message, never a traceback
        show_error(exc)
    finally:
        warm_imports()  # torch, FAISS, LightGBM in the background once the first page has drawn, not during it
