"""Authentication and authorization: authenticators yield a :class:`~auth.principal.Principal`.

Only :mod:`auth.flask` knows about HTTP; everything else is plain Python.
"""
