"""CDMI against a running ``nimbo up``: plain HTTP (requests, curl) and CDMI JSON (client.py)."""
