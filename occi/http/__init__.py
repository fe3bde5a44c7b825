"""The OCCI HTTP protocol (GFD-R-P.223) as a Flask blueprint."""
