"""
tests/integration/fakebluez.py - the independent fake BlueZ: python-dbusmock's bluez5 template
in its own process owning org.bluez on a private bus, plus the GATT objects of our sensors, added
through the mock's control API (AddObject, AddMethod) by this test process.

Like bluetoothd, the mock exports a sensor's GATT service and characteristics only after
Device1.Connect (InterfacesAdded, then ServicesResolved), flips Notifying on StartNotify/StopNotify,
and removes the GATT objects again on Disconnect. Notifications are PropertiesChanged signals
emitted by the mock process itself (via its EmitSignal method), so their sender is the unique name
that owns org.bluez. The test's own bus connection can forge the same signals, broadcast or
addressed to one connection (spoofing tests).

Each sensor's device object also has test-only control methods on FAKE_IFACE (not a property
interface, so the daemon never sees it): make the next Connect calls fail, read the times of the
Connect calls, and drop the link as bluetoothd does when the radio link is lost. A FakeBluez can
be killed like a crashing bluetoothd, and a PlainOwner is a bare connection that holds org.bluez
until a new fake takes the name over.
"""

import os
import signal
import subprocess
import sys
import time

import dbus

import payloads
from procs import check, stop_process, wait_until

BLUEZ = 'org.bluez'
MOCK_IFACE = 'org.freedesktop.DBus.Mock'
BLUEZ_MOCK_IFACE = 'org.bluez.Mock'
DEVICE_IFACE = 'org.bluez.Device1'
SERVICE_IFACE = 'org.bluez.GattService1'
CHAR_IFACE = 'org.bluez.GattCharacteristic1'
OM_IFACE = 'org.freedesktop.DBus.ObjectManager'
FAKE_IFACE = 'org.spinewatch.FakeSensor'  # test-only control methods of a fake sensor
DBUS_SERVICE = DBUS_IFACE = 'org.freedesktop.DBus'  # the bus itself
DBUS_PATH = '/org/freedesktop/DBus'
CALL_TIMEOUT = 5  # seconds for every D-Bus call to the mock

# Kinds of fake sensors: advertised service, and role -> characteristic UUID and flags.
SENSOR_KINDS = {
    'posture-clip': (payloads.SPINE_SERVICE, {'posture': (payloads.SPINE_POSTURE, ['read', 'notify'])}),
    'sound': (payloads.SPINE_SERVICE, {'crack': (payloads.SPINE_CRACK, ['notify'])}),
    'combined': (payloads.SPINE_SERVICE, {'posture': (payloads.SPINE_POSTURE, ['read', 'notify']),
                                          'crack': (payloads.SPINE_CRACK, ['notify'])}),
    'microbit': (payloads.MICROBIT_ACCEL_SERVICE,
                 {'microbit': (payloads.MICROBIT_ACCEL_DATA, ['read', 'notify'])}),
}

# Method bodies run inside the mock process: python-dbusmock executes them with `self` the
# object, `args` the arguments, and its module globals (`dbus`, `objects`). @NAME@ markers are
# filled in by _code().
_EMIT_CHANGED = """self.EmitSignal('org.freedesktop.DBus.Properties', 'PropertiesChanged', 'sa{sv}as',
                [@IFACE@, @CHANGED@, dbus.Array([], signature='s')])
"""

_NOTIFY_CODE = """
p = self.props['org.bluez.GattCharacteristic1']
if bool(p['Notifying']) != @ON@:
    p['Notifying'] = dbus.Boolean(@ON@, variant_level=1)
    """ + _EMIT_CHANGED.replace('@CHANGED@', "{'Notifying': dbus.Boolean(@ON@, variant_level=1)}")

_READ_CODE = "ret = self.props['org.bluez.GattCharacteristic1']['Value']\n"

# Connect: the call's time is recorded; while failures are pending (FailConnects) it fails as
# bluetoothd does when the device does not answer. Otherwise Connected=true and reply at once;
# shortly after (from the mock's main loop, as bluetoothd does after service discovery) export
# the GATT objects, then ServicesResolved=true.
_CONNECT_CODE = """
gatt = @GATT@
import time
self.connect_times = getattr(self, 'connect_times', []) + [time.time()]
if getattr(self, 'connect_failures', 0) > 0:
    self.connect_failures -= 1
    raise dbus.exceptions.DBusException('le-connection-abort-by-local',
                                        name='org.bluez.Error.Failed')
dev = self.props['org.bluez.Device1']
if dev['Connected']:
    raise dbus.exceptions.DBusException('Already Connected', name='org.bluez.Error.AlreadyConnected')
dev['Connected'] = dbus.Boolean(True, variant_level=1)
self.connected = True
""" + _EMIT_CHANGED.replace('@CHANGED@', "{'Connected': dbus.Boolean(True, variant_level=1)}") + """
def export_gatt(device, gatt):
    root = objects['/']
    for path, iface, props, methods in gatt:
        if path not in objects:
            root.AddObject(path, iface, props, methods)
            root.EmitSignal('org.freedesktop.DBus.ObjectManager', 'InterfacesAdded', 'oa{sa{sv}}',
                            [dbus.ObjectPath(path), {iface: objects[path].props[iface]}])
    device.props['org.bluez.Device1']['ServicesResolved'] = dbus.Boolean(True, variant_level=1)
    device.EmitSignal('org.freedesktop.DBus.Properties', 'PropertiesChanged', 'sa{sv}as',
                      ['org.bluez.Device1', {'ServicesResolved': dbus.Boolean(True, variant_level=1)},
                       dbus.Array([], signature='s')])
    return False

from gi.repository import GLib
GLib.timeout_add(50, export_gatt, self, gatt)
"""

# Disconnect (and DropLink, the link loss): GATT objects go away (characteristics first), then
# ServicesResolved and Connected.
_DISCONNECT_CODE = """
paths = @PATHS@
dev = self.props['org.bluez.Device1']
if not dev['Connected']:
    raise dbus.exceptions.DBusException('Not Connected', name='org.bluez.Error.NotConnected')
root = objects['/']
for path in paths:
    if path in objects:
        ifaces = dbus.Array(list(objects[path].props.keys()), signature='s')
        root.RemoveObject(path)
        root.EmitSignal('org.freedesktop.DBus.ObjectManager', 'InterfacesRemoved', 'oas',
                        [dbus.ObjectPath(path), ifaces])
dev['ServicesResolved'] = dbus.Boolean(False, variant_level=1)
dev['Connected'] = dbus.Boolean(False, variant_level=1)
self.connected = False
""" + _EMIT_CHANGED.replace('@CHANGED@', "{'ServicesResolved': dbus.Boolean(False, variant_level=1), "
                            "'Connected': dbus.Boolean(False, variant_level=1)}")


def _code(template, **values):
    """Fill the @NAME@ markers of a method body; @IFACE@ defaults to Device1."""
    values.setdefault('IFACE', repr(DEVICE_IFACE))
    for name, value in values.items():
        template = template.replace(f'@{name}@', value)
    return template


# --- bus helpers: who is who, and signals from connections that do not own org.bluez ---

def _bus_call(bus, method, *args):
    return bus.get_object(DBUS_SERVICE, DBUS_PATH, introspect=False).get_dbus_method(
        method, DBUS_IFACE)(*args, timeout=CALL_TIMEOUT)


def connection_pid(bus, name):
    """The process ID behind a bus name (unique or well-known)."""
    return int(_bus_call(bus, 'GetConnectionUnixProcessID', name))


def connection_of_pid(bus, pid):
    """The unique bus name of the connection of process `pid`, or None if it has none."""
    for name in _bus_call(bus, 'ListNames'):
        if not name.startswith(':'):
            continue
        try:
            if connection_pid(bus, name) == pid:
                return str(name)
        except dbus.exceptions.DBusException:
            pass  # disconnected meanwhile
    return None


def send_signal(bus, path, interface, member, signature, args, destination=None):
    """Send a signal from `bus`: broadcast, or unicast to the connection `destination` (which
    gets it whatever its match rules say)."""
    msg = dbus.lowlevel.SignalMessage(path, interface, member)
    if destination:
        msg.set_destination(destination)
    msg.append(*args, signature=signature)
    bus.send_message(msg)
    bus.flush()


def forge_changed(bus, path, interface, changed, destination=None):
    """PropertiesChanged(`interface`, `changed`, []) on `path`."""
    send_signal(bus, path, dbus.PROPERTIES_IFACE, 'PropertiesChanged', 'sa{sv}as',
                [interface, dbus.Dictionary(changed, signature='sv'),
                 dbus.Array([], signature='s')], destination)


def forge_interfaces_added(bus, path, interfaces, destination=None):
    """ObjectManager InterfacesAdded on / for `path`; `interfaces` maps name -> properties."""
    send_signal(bus, '/', OM_IFACE, 'InterfacesAdded', 'oa{sa{sv}}',
                [dbus.ObjectPath(path),
                 dbus.Dictionary({i: dbus.Dictionary(p, signature='sv')
                                  for i, p in interfaces.items()}, signature='sa{sv}')],
                destination)


def forge_interfaces_removed(bus, path, interfaces, destination=None):
    """ObjectManager InterfacesRemoved on / for `path`."""
    send_signal(bus, '/', OM_IFACE, 'InterfacesRemoved', 'oas',
                [dbus.ObjectPath(path), dbus.Array(interfaces, signature='s')], destination)


class PlainOwner:
    """A bare bus connection (no objects, no main loop, never answers) that takes org.bluez
    allowing replacement: an earlier bluetoothd whose name the next FakeBluez takes over while
    it stays connected. What it sends afterwards comes from a former owner."""

    def __init__(self, bus_address):
        self.bus = dbus.bus.BusConnection(bus_address)
        self.name = self.bus.get_unique_name()

    def take_name(self):
        reply = self.bus.request_name(
            BLUEZ, dbus.bus.NAME_FLAG_ALLOW_REPLACEMENT | dbus.bus.NAME_FLAG_DO_NOT_QUEUE)
        check(reply == dbus.bus.REQUEST_NAME_REPLY_PRIMARY_OWNER,
              f'could not take org.bluez (RequestName replied {reply})')

    def owns_name(self):
        return self.bus.name_has_owner(BLUEZ) and self.bus.get_name_owner(BLUEZ) == self.name

    def close(self):
        self.bus.close()


class FakeSensor:
    """One fake sensor: its Device1 path and the paths of its characteristics by role."""

    def __init__(self, address, name, kind, device_path, service_path, char_paths):
        self.address = address
        self.name = name
        self.kind = kind
        self.path = device_path
        self.service_path = service_path
        self.chars = char_paths  # role -> object path
        self.seq = {role: 0 for role in char_paths}  # next sequence number per characteristic


class FakeBluez:
    """python-dbusmock's bluez5 template in a child process on the bus at `bus_address`, with an
    adapter hci0; add sensors with add_sensor(). `label` names its files in `tmpdir` (several
    fakes may follow each other in one test). It takes org.bluez over from whoever holds it."""

    def __init__(self, bus_address, tmpdir, label='dbusmock'):
        self.log_path = os.path.join(tmpdir, f'{label}.log')
        env = dict(os.environ)
        env['DBUS_SYSTEM_BUS_ADDRESS'] = bus_address
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'dbusmock', '--system', '--template', 'bluez5',
             '--logfile', self.log_path],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(tmpdir, f'{label}.stderr'), 'wb'))
        self.bus = None
        try:
            self.bus = dbus.bus.BusConnection(bus_address)
            wait_until(self._ready, 15, 'python-dbusmock to own org.bluez', interval=0.05)
            self.owner = self.bus.get_name_owner(BLUEZ)
            self.root = self.bus.get_object(BLUEZ, '/')
            self.adapter = self.root.AddAdapter('hci0', 'spinewatch-test',
                                                dbus_interface=BLUEZ_MOCK_IFACE,
                                                timeout=CALL_TIMEOUT)
        except BaseException:
            self.stop()
            raise
        self.sensors = []
        self.next_handle = 0x0010

    def _ready(self):
        check(self.proc.poll() is None, f'python-dbusmock exited with {self.proc.returncode}')
        if not self.bus.name_has_owner(BLUEZ):
            return False
        try:
            if connection_pid(self.bus, self.bus.get_name_owner(BLUEZ)) != self.proc.pid:
                return False  # still someone else's (the name is being taken over)
        except dbus.exceptions.DBusException:
            return False  # the owner changed while we asked
        obj = self.bus.get_object(BLUEZ, '/')
        obj.GetManagedObjects(dbus_interface=OM_IFACE, timeout=CALL_TIMEOUT)
        return True

    def stop(self):
        if self.bus is not None:
            self.bus.close()
            self.bus = None
        stop_process(self.proc)
        if self.proc.stderr:
            self.proc.stderr.close()

    def kill(self):
        """SIGKILL the mock, as when bluetoothd crashes: org.bluez loses its owner without any
        InterfacesRemoved or PropertiesChanged."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def obj(self, path):
        return self.bus.get_object(BLUEZ, path, introspect=False)

    def add_device(self, address, name, uuids):
        """A plain device (template AddDevice) advertising `uuids`; returns its object path."""
        path = self.root.AddDevice('hci0', address, name, dbus_interface=BLUEZ_MOCK_IFACE,
                                   timeout=CALL_TIMEOUT)
        if uuids:
            self.set_uuids(path, uuids)
        return path

    def set_uuids(self, path, uuids):
        """Change a device's UUIDs (PropertiesChanged, as after service discovery)."""
        self.obj(path).UpdateProperties(
            DEVICE_IFACE, {'UUIDs': dbus.Array(uuids, signature='s')}, signature='sa{sv}',
            dbus_interface=MOCK_IFACE, timeout=CALL_TIMEOUT)

    def add_hidden_device(self, address, name):
        """A Device1 object the mock has but never announced (no InterfacesAdded), advertising
        nothing, with a Connect method that only records its calls: the target of forged
        InterfacesAdded signals. Returns its object path."""
        path = f'/org/bluez/hci0/dev_{address.replace(":", "_")}'
        self.root.AddObject(path, DEVICE_IFACE, {
            'Address': dbus.String(address, variant_level=1),
            'Name': dbus.String(name, variant_level=1),
            'Alias': dbus.String(name, variant_level=1),
            'UUIDs': dbus.Array([], signature='s', variant_level=1),
            'Connected': dbus.Boolean(False, variant_level=1),
            'Adapter': dbus.ObjectPath('/org/bluez/hci0', variant_level=1),
        }, [('Connect', '', '', ''), ('Disconnect', '', '', '')],
            signature='ssa{sv}a(ssss)', dbus_interface=MOCK_IFACE, timeout=CALL_TIMEOUT)
        return path

    def add_sensor(self, address, name, kind):
        """A sensor of SENSOR_KINDS `kind`: a device advertising its service, with Connect and
        Disconnect that export and remove its GATT objects. Returns a FakeSensor."""
        service_uuid, roles = SENSOR_KINDS[kind]
        # the sensor service UUID comes last, once Connect exists (a daemon already running
        # connects as soon as it sees it)
        path = self.add_device(address, name, [])
        service_path = f'{path}/service{self.next_handle:04x}'
        gatt = [(service_path, SERVICE_IFACE, {
            'UUID': dbus.String(service_uuid, variant_level=1),
            'Device': dbus.ObjectPath(path, variant_level=1),
            'Primary': dbus.Boolean(True, variant_level=1),
            'Includes': dbus.Array([], signature='o', variant_level=1),
        }, [])]
        chars = {}
        handle = self.next_handle
        for role, (uuid, flags) in roles.items():
            handle += 3
            char_path = f'{service_path}/char{handle:04x}'
            chars[role] = char_path
            gatt.append((char_path, CHAR_IFACE, {
                'UUID': dbus.String(uuid, variant_level=1),
                'Service': dbus.ObjectPath(service_path, variant_level=1),
                'Flags': dbus.Array(flags, signature='s', variant_level=1),
                'Notifying': dbus.Boolean(False, variant_level=1),
                'Value': dbus.Array([], signature='y', variant_level=1),
            }, [
                ('StartNotify', '', '', _code(_NOTIFY_CODE, ON='True', IFACE=repr(CHAR_IFACE))),
                ('StopNotify', '', '', _code(_NOTIFY_CODE, ON='False', IFACE=repr(CHAR_IFACE))),
                ('ReadValue', 'a{sv}', 'ay', _READ_CODE),
            ]))
        self.next_handle += 0x0010
        device = self.obj(path)
        device.AddMethods(DEVICE_IFACE, [
            ('Connect', '', '', _code(_CONNECT_CODE, GATT=repr(gatt))),
            ('Disconnect', '', '',
             _code(_DISCONNECT_CODE, PATHS=repr([p for p, *_ in reversed(gatt)]))),
        ], signature='sa(ssss)', dbus_interface=MOCK_IFACE, timeout=CALL_TIMEOUT)
        device.AddMethods(FAKE_IFACE, [
            ('FailConnects', 'u', '', 'self.connect_failures = int(args[0])'),
            ('ConnectTimes', '', 'ad',
             "ret = dbus.Array(getattr(self, 'connect_times', []), signature='d')"),
            ('DropLink', '', '',
             _code(_DISCONNECT_CODE, PATHS=repr([p for p, *_ in reversed(gatt)]))),
        ], signature='sa(ssss)', dbus_interface=MOCK_IFACE, timeout=CALL_TIMEOUT)
        self.set_uuids(path, [service_uuid, '0000180f-0000-1000-8000-00805f9b34fb'])
        sensor = FakeSensor(address, name, kind, path, service_path, chars)
        self.sensors.append(sensor)
        return sensor

    # --- state seen by the mock ---

    def method_calls(self, path, method):
        return self.obj(path).GetMethodCalls(method, signature='s', dbus_interface=MOCK_IFACE,
                                             timeout=CALL_TIMEOUT)

    def notifying(self, sensor, role):
        path = sensor.chars[role]
        if path not in self.managed_paths():
            return False
        return bool(self.obj(path).Get(CHAR_IFACE, 'Notifying', signature='ss',
                                       dbus_interface=dbus.PROPERTIES_IFACE,
                                       timeout=CALL_TIMEOUT))

    def fail_connects(self, sensor, count):
        """The next `count` Connect calls on the sensor fail with org.bluez.Error.Failed."""
        self.obj(sensor.path).FailConnects(dbus.UInt32(count), dbus_interface=FAKE_IFACE,
                                           timeout=CALL_TIMEOUT)

    def connect_times(self, sensor):
        """time.time() of every Connect call on the sensor so far (failed ones included)."""
        return [float(t) for t in self.obj(sensor.path).ConnectTimes(dbus_interface=FAKE_IFACE,
                                                                     timeout=CALL_TIMEOUT)]

    def drop_link(self, sensor):
        """Link loss: the sensor's GATT objects are removed, then Connected=false, without any
        Disconnect call (what bluetoothd does when the device goes out of range)."""
        self.obj(sensor.path).DropLink(dbus_interface=FAKE_IFACE, timeout=CALL_TIMEOUT)

    def managed_paths(self):
        return set(self.root.GetManagedObjects(dbus_interface=OM_IFACE, timeout=CALL_TIMEOUT))

    def wait_notifying(self, sensors, timeout=15):
        """Wait until the daemon has called StartNotify on every characteristic of `sensors`."""
        def all_on():
            return all(self.notifying(s, role) for s in sensors for role in s.chars)
        wait_until(all_on, timeout, 'spinewatchd to StartNotify on every sensor characteristic',
                   interval=0.05)

    # --- notifications ---

    @staticmethod
    def _changed_args(value):
        return [CHAR_IFACE, dbus.Dictionary({'Value': value}, signature='sv'),
                dbus.Array([], signature='s')]

    def notify(self, sensor, role, payload):
        """A genuine notification: the mock (org.bluez's owner) emits PropertiesChanged with
        Value = `payload` (bytes) on the characteristic."""
        self.notify_value(sensor, role, dbus.Array(list(payload), signature='y'))

    def notify_value(self, sensor, role, value):
        """Like notify() with any D-Bus value as Value (hostile-type tests)."""
        self.obj(sensor.chars[role]).EmitSignal(
            'org.freedesktop.DBus.Properties', 'PropertiesChanged', 'sa{sv}as',
            self._changed_args(value), signature='sssav', dbus_interface=MOCK_IFACE,
            timeout=CALL_TIMEOUT)

    def forge(self, path, interface, changed, destination=None):
        """A PropertiesChanged on `path` sent by the test's own connection, not by org.bluez;
        broadcast, or addressed to the connection `destination`."""
        forge_changed(self.bus, path, interface, changed, destination)

    def next_seq(self, sensor, role):
        seq = sensor.seq[role]
        sensor.seq[role] = (seq + 1) & 0xFFFF
        return seq

    def send_crack(self, sensor, **fields):
        """A valid Crack notification with the sensor's next sequence number; returns the seq."""
        seq = self.next_seq(sensor, 'crack')
        self.notify(sensor, 'crack', payloads.crack(seq, **fields))
        return seq

    def send_gravity(self, sensor, x, y, z):
        """One gravity sample in the sensor's own format (Posture or micro:bit)."""
        if 'microbit' in sensor.chars:
            self.notify(sensor, 'microbit', payloads.microbit(x, y, z))
        else:
            self.notify(sensor, 'posture', payloads.posture(self.next_seq(sensor, 'posture'), x, y, z))


def self_test(bus_address, tmpdir):
    """Exercise the fake on its own (no spinewatchd): Connect exports the GATT objects,
    StartNotify flips Notifying, and notifications arrive with the mock's unique name as
    sender while forged ones carry ours. Used by run.py --self-test."""
    from dbus.mainloop.glib import DBusGMainLoop
    from gi.repository import GLib

    fake = FakeBluez(bus_address, tmpdir)
    client = dbus.bus.BusConnection(bus_address, mainloop=DBusGMainLoop())
    context = GLib.MainContext.default()
    try:
        clip = fake.add_sensor('C0:FF:EE:00:00:01', 'Spine Clip', 'combined')
        seen = []
        client.add_message_filter(lambda _c, m: seen.append(m) if m.get_type() == 4 else None)
        client.add_match_string(f"type='signal',sender='{BLUEZ}'")
        client.add_match_string(f"type='signal',path_namespace='{clip.path}'")
        client.add_match_string(f"type='signal',interface='{OM_IFACE}'")

        def pump(pred, what):
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                while context.iteration(False):
                    pass
                found = [m for m in seen if pred(m)]
                if found:
                    return found
                time.sleep(0.02)
            raise AssertionError(f'self-test: no {what}')

        check(not fake.notifying(clip, 'crack'), 'characteristics exist before Connect')
        client.get_object(BLUEZ, clip.path).Connect(dbus_interface=DEVICE_IFACE, timeout=5)
        added = pump(lambda m: m.get_member() == 'InterfacesAdded', 'InterfacesAdded')
        check(all(m.get_sender() == fake.owner for m in added), 'InterfacesAdded not from owner')
        pump(lambda m: m.get_member() == 'PropertiesChanged'
             and m.get_args_list()[1].get('ServicesResolved'), 'ServicesResolved')
        om = client.get_object(BLUEZ, '/').GetManagedObjects(dbus_interface=OM_IFACE)
        char = om[clip.chars['crack']][CHAR_IFACE]
        check(char['UUID'] == payloads.SPINE_CRACK and char['Service'] == clip.service_path,
              f'crack characteristic properties: {dict(char)}')
        check(om[clip.service_path][SERVICE_IFACE]['Device'] == clip.path, 'service Device')
        check(payloads.SPINE_SERVICE in om[clip.path][DEVICE_IFACE]['UUIDs'], 'device UUIDs')
        check(om[clip.path][DEVICE_IFACE]['Connected'], 'Connected not updated')

        client.get_object(BLUEZ, clip.chars['crack']).StartNotify(dbus_interface=CHAR_IFACE)
        check(fake.notifying(clip, 'crack'), 'StartNotify did not set Notifying')
        payload = payloads.crack(7, 'pop', 80, 120, 4, 35)
        check(payload.hex() == '010700005078000423' + '00', f'crack encoder: {payload.hex()}')
        fake.notify(clip, 'crack', payload)
        fake.forge(clip.chars['crack'], CHAR_IFACE, {'Value': dbus.Array(b'\x01', signature='y')})

        def value_of(m):
            args = m.get_args_list()
            return bytes(args[1]['Value']) if m.get_member() == 'PropertiesChanged' \
                and args[0] == CHAR_IFACE and 'Value' in args[1] else None
        values = pump(lambda m: value_of(m) is not None and len(value_of(m)) == 1, 'forged value')
        values = [m for m in seen if value_of(m) is not None]
        check(len(values) == 2, f'expected 2 Value signals, got {len(values)}')
        check(value_of(values[0]) == payload and values[0].get_sender() == fake.owner,
              f'genuine notification: {value_of(values[0])!r} from {values[0].get_sender()}')
        check(values[0].get_signature() == 'sa{sv}as', 'signature')
        check(values[0].get_args_list()[1]['Value'].signature == 'y', 'Value is not ay')
        check(values[1].get_sender() == fake.bus.get_unique_name() != fake.owner, 'forged sender')
        check(values[0].get_path() == clip.chars['crack'], 'notification path')

        client.get_object(BLUEZ, clip.path).Disconnect(dbus_interface=DEVICE_IFACE, timeout=5)
        check(clip.chars['crack'] not in fake.managed_paths(), 'GATT objects left after Disconnect')
    finally:
        client.close()
        fake.stop()
