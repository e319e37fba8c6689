"""Photos in: reading one image safely, scanning a folder into classes and splits, where a dataset comes from
(the demo, a sample set, a zip, a folder, photos made here), the person's decisions about photos (moved, left out,
added from photos without labels), and the decoded-image
pipeline that feeds `tf.data`.

May import: base.
"""
