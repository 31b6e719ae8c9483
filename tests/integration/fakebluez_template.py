"""
tests/integration/fakebluez_template.py - the python-dbusmock template our fake BlueZ runs:
python-dbusmock's own bluez5 template, plus fakebluez_mock's message filter installed before the
mock's main loop runs. The mock owns org.bluez before it loads its template, and a daemon calls
RegisterAgent as soon as it sees a new owner: a filter installed later could miss that call.
"""

from dbusmock.templates import bluez5
from dbusmock.templates.bluez5 import *  # noqa: F401,F403 (BUS_NAME etc. and the methods)

import fakebluez_mock


def load(mock, parameters):
    bluez5.load(mock, parameters)
    fakebluez_mock.install(mock)
