#!/bin/sh
# Starting the application with spawn-fcgi (as with lighttpd's bin-path,
# the socket is on file descriptor 0): a unix socket owned by the
# application's user, reachable by the web server's group.
exec spawn-fcgi -n -s /run/yourapplication/fcgi.sock -M 0660 \
    -u yourapplication -U yourapplication -G www-data \
    -- /srv/yourapplication/app.fcgi
