"""recsys: e-commerce behaviour analytics and recommendations over REES46-format event logs.

The library behind the Streamlit app, the CLI (``python -m recsys``) and the REST API. It never imports
streamlit.
"""
