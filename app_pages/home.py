"""Home: what the tool does and the four steps, each a link."""

import streamlit as st

from app_pages.shared import next_step

st.title("Fine-Tune Studio")
st.markdown(
    "Turn a folder of labelled photos into an image classifier: the tool starts from a network "
    "that already knows photos (trained on ImageNet) and teaches it your classes, in two phases."
)
st.markdown(
    "**Where to start:** go through the four steps in order. Everything has a sensible default, "
    "so you can press through with the built-in demo photos and end with a confusion matrix."
)
STEPS = [
    ("1. Data", "app_pages/data.py", "Choose photos: the demo, a zip, or a folder. Check what will be used."),
    ("2. Model", "app_pages/model.py", "Choose the pretrained network and which of its layers may learn."),
    ("3. Train", "app_pages/train.py", "Start training and watch it live. Stop whenever you like."),
    ("4. Evaluate", "app_pages/evaluate.py", "See how good it is, where it errs, and download it."),
]
for column, (title, page, text) in zip(st.columns(4), STEPS, strict=True):
    with column, st.container(border=True):
        next_step(page, title)
        st.caption(text)
