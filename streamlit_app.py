"""Fine-Tune Studio: the dashboard's entry point (navigation and the shared sidebar)."""

import streamlit as st

from pages.shared import sidebar

st.set_page_config(page_title="Fine-Tune Studio", page_icon=":material/model_training:", layout="wide")


def home() -> None:
    st.title("Fine-Tune Studio")
    st.markdown(
        "Turn a folder of labelled photos into an image classifier: the tool starts from a network "
        "that already knows photos (trained on ImageNet) and teaches it your classes, in two phases."
    )
    st.markdown(
        "**Where to start:** go through the four steps in order. Everything has a sensible default, "
        "so you can press through with the built-in demo photos and end with a confusion matrix."
    )
    steps = [
        ("1. Data", "pages/data.py", "Choose photos: the demo, a zip, or a folder. Check what will be used."),
        ("2. Model", "pages/model.py", "Choose the pretrained network and which of its layers may learn."),
        ("3. Train", "pages/train.py", "Start training and watch it live. Stop whenever you like."),
        ("4. Evaluate", "pages/evaluate.py", "See how good it is, where it errs, and download it."),
    ]
    columns = st.columns(4)
    for column, (title, page, text) in zip(columns, steps):
        with column, st.container(border=True):
            st.page_link(page, label=title)
            st.caption(text)


pages = [
    st.Page(home, title="Home", icon=":material/home:", default=True),
    st.Page("pages/data.py", title="Data", icon=":material/photo_library:"),
    st.Page("pages/model.py", title="Model", icon=":material/neurology:"),
    st.Page("pages/train.py", title="Train", icon=":material/monitoring:"),
    st.Page("pages/evaluate.py", title="Evaluate", icon=":material/fact_check:"),
]
# Pages check this mark: on a freshly started server Streamlit's legacy `pages/` mode
# would run a deep-linked page alone, without this frame (see pages/shared.require_app).
st.session_state["_routed"] = True
try:
    navigation = st.navigation(pages)
    wanted = st.session_state.pop("_wanted_page", None)
    if wanted:
        st.switch_page(wanted)
    sidebar()
    navigation.run()
finally:
    st.session_state["_routed"] = False
