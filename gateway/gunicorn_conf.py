"""gunicorn settings used by ``nimbo up``/``nimbo serve``; makes gunicorn's own ``Server``
response field the OCCI one (OCCI requires ``OCCI/1.2`` in it)."""

import gunicorn.http.wsgi

from occi.http.views import SERVER_HEADER

gunicorn.http.wsgi.SERVER = SERVER_HEADER

worker_class = "gthread"
threads = 4
keepalive = 5
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
