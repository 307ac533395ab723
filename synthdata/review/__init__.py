"""A person's review of a synthetic set: a self-contained HTML page to accept or reject each image
beside real ones (``page``), the decisions it exports (``decisions``), and a new version of the
set without the rejected images, the decisions on its record and in its credentials (``apply``)."""
