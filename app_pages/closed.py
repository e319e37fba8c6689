"""What another computer sees when the dashboard has no password: nothing but the way in."""

import streamlit as st

from core.sharing.access import CLOSED_MESSAGE

st.title("Fine-Tune Studio")
st.info(CLOSED_MESSAGE, icon=":material/lock:")
