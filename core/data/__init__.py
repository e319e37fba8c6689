"""Photos in: reading one image safely, scanning a folder into classes and splits, where a dataset comes from
(the demo, a sample set, a zip, a folder, photos made here), the photo review's decisions, and the decoded-image
pipeline that feeds `tf.data`.

May import: base.
"""
