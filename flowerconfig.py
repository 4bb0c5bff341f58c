"""Flower's configuration file (Flower loads ``flowerconfig.py`` from its working directory): enforces
``tasks.flower_guard`` — a non-loopback bind needs real credentials, however Flower was started."""

from tornado.options import options

from tasks.flower_guard import install

install(options)
