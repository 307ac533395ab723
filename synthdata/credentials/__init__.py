"""Signed C2PA Content Credentials for synthetic PNGs: a local test signer (``keys``), signing
an image's claim embedded or as a sidecar (``sign``), and checking files and set folders
against their credentials and manifest rows (``verify``). Offline throughout (``context``)."""
