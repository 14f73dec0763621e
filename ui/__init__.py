"""Streamlit-aware helpers of the pages in pages/ (the library, recsys/, never imports streamlit)."""
