"""
tests/integration/fakebluez.py - the independent fake BlueZ: python-dbusmock's bluez5 template
in its own process owning org.bluez on a private bus, plus the GATT objects of our sensors, added
through the mock's control API (AddObject, AddMethod) by this test process. What runs inside the
mock process is fakebluez_mock.py (loaded through fakebluez_template.py, which is the bluez5
template plus a message filter installed before the mock serves anything).

Like bluetoothd, the mock exports a sensor's GATT service and characteristics (and Battery1 if
the sensor has a battery) only after Device1.Connect (InterfacesAdded, then ServicesResolved, the
resolved service joining the device's UUIDs), and removes them again on Disconnect, link loss and
adapter power-off. Subscriptions: StartNotify flips Notifying; AcquireNotify (unless configured
to fail or be absent) hands out one end of a SOCK_SEQPACKET socketpair and sets NotifyAcquired;
notify() then writes one packet per notification to it, else the mock emits PropertiesChanged
(Value) itself, so the sender is the unique name that owns org.bluez. Every subscription call is
logged per connection. A sensor may demand pairing: subscriptions fail (NotAuthorized, ...)
until Device1.Pair, which asks the agent registered with AgentManager1.RegisterAgent (whose
sender is recorded) and sets Paired. Adapters: discovery with a recorded filter, SetPowered,
removal with all their devices. The test's own bus connection can forge signals, broadcast or
addressed to one connection (spoofing tests).

Each sensor's device object also has test-only control methods on FAKE_IFACE (not a property
interface, so the daemon never sees it): make the next Connect calls fail, read the times of the
Connect calls, drop the link as bluetoothd does when the radio link is lost, set the battery
level, read the subscription log. A FakeBluez can be killed like a crashing bluetoothd, and a
PlainOwner is a bare connection that holds org.bluez until a new fake takes the name over.
"""

import json
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

# The fake's behaviour inside the mock process lives in fakebluez_mock.py (imported there from
# this directory); method bodies are one-line calls into it.
HERE = os.path.dirname(os.path.abspath(__file__))


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
    """One fake sensor: its Device1 path and the paths of its characteristics by role, and
    what it was created with (so that it can be created again, e.g. after its adapter came
    back)."""

    def __init__(self, address, name, kind, device_path, service_path, char_paths, options):
        self.address = address
        self.name = name
        self.kind = kind
        self.path = device_path
        self.service_path = service_path
        self.chars = char_paths  # role -> object path
        self.options = options   # add_sensor keyword arguments
        self.seq = {role: 0 for role in char_paths}  # next sequence number per characteristic


def _adapter_path(adapter):
    return adapter if adapter.startswith('/') else f'/org/bluez/{adapter}'


class FakeBluez:
    """python-dbusmock's bluez5 template in a child process on the bus at `bus_address`, with an
    adapter hci0; add sensors with add_sensor(). `label` names its files in `tmpdir` (several
    fakes may follow each other in one test). It takes org.bluez over from whoever holds it."""

    def __init__(self, bus_address, tmpdir, label='dbusmock'):
        self.log_path = os.path.join(tmpdir, f'{label}.log')
        env = dict(os.environ)
        env['DBUS_SYSTEM_BUS_ADDRESS'] = bus_address
        env['PYTHONPATH'] = HERE + (os.pathsep + env['PYTHONPATH'] if env.get('PYTHONPATH') else '')
        env['PYTHONDONTWRITEBYTECODE'] = '1'  # keep the source tree clean
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'dbusmock', '--system', '--template',
             os.path.join(HERE, 'fakebluez_template.py'),
             '--logfile', self.log_path],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(tmpdir, f'{label}.stderr'), 'wb'))
        self.bus = None
        self.sensors = []
        self.next_handle = 0x0010
        try:
            self.bus = dbus.bus.BusConnection(bus_address)
            wait_until(self._ready, 15, 'python-dbusmock to own org.bluez', interval=0.05)
            self.owner = self.bus.get_name_owner(BLUEZ)
            self.root = self.bus.get_object(BLUEZ, '/')
            m = 'import fakebluez_mock as m\n'
            self.root.AddMethods(FAKE_IFACE, [
                ('Install', '', '', m + 'm.install(self)'),
                ('AddSensorDevice', 'ossass', 'o',
                 m + 'ret = dbus.ObjectPath(m.add_sensor_device(*args))'),
                ('ConfigureAdapter', 'o', '', m + 'm.configure_adapter(objects[args[0]])'),
                ('RemoveAdapterFully', 'o', '', m + 'm.remove_adapter(args[0])'),
                ('Agents', '', 's', m + 'ret = m.agents_json()'),
                # served by the message filter (asynchronously); declared for introspection
                ('CallAgent', 'so', 'ss', ''),
            ], signature='sa(ssss)', dbus_interface=MOCK_IFACE, timeout=CALL_TIMEOUT)
            self.root.Install(dbus_interface=FAKE_IFACE, timeout=CALL_TIMEOUT)
            self.adapter = self.add_adapter('hci0')
        except BaseException:
            self.stop()
            raise

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
        InterfacesRemoved or PropertiesChanged (and acquired notify sockets hang up)."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def obj(self, path):
        return self.bus.get_object(BLUEZ, path, introspect=False)

    # --- adapters ---

    def add_adapter(self, name='hci0'):
        """The template's AddAdapter (powered, InterfacesAdded) with our discovery methods and
        SetPowered. Returns its object path."""
        path = self.root.AddAdapter(name, 'spinewatch-test', dbus_interface=BLUEZ_MOCK_IFACE,
                                    timeout=CALL_TIMEOUT)
        self.root.ConfigureAdapter(dbus.ObjectPath(path), dbus_interface=FAKE_IFACE,
                                   timeout=CALL_TIMEOUT)
        return str(path)

    def remove_adapter(self, name='hci0'):
        """The adapter goes away as when unplugged: each device's GATT objects and the device
        (InterfacesRemoved), then the adapter. The FakeSensor objects stay for readd_sensor()."""
        self.root.RemoveAdapterFully(dbus.ObjectPath(_adapter_path(name)),
                                     dbus_interface=FAKE_IFACE, timeout=CALL_TIMEOUT)

    def set_powered(self, on, adapter='hci0'):
        """Powered off: every sensor of the adapter disconnects first (like bluetoothd), and
        Connect answers NotReady until it is powered on again."""
        self.obj(_adapter_path(adapter)).SetPowered(dbus.Boolean(on), dbus_interface=FAKE_IFACE,
                                                    timeout=CALL_TIMEOUT)

    def adapter_prop(self, name, adapter='hci0'):
        return self.obj(_adapter_path(adapter)).Get(
            'org.bluez.Adapter1', name, dbus_interface=dbus.PROPERTIES_IFACE, timeout=CALL_TIMEOUT)

    def discovering(self, adapter='hci0'):
        return bool(self.adapter_prop('Discovering', adapter))

    def discovery_filter(self, adapter='hci0'):
        """The last SetDiscoveryFilter argument (plain Python), None if never set."""
        return json.loads(str(self.obj(_adapter_path(adapter)).DiscoveryFilter(
            dbus_interface=FAKE_IFACE, timeout=CALL_TIMEOUT)))

    def adapter_calls(self, method, adapter='hci0'):
        """[(time, args)] of the calls of `method` on the adapter."""
        return self.method_calls(_adapter_path(adapter), method)

    # --- devices ---

    def add_device(self, address, name, uuids, adapter='hci0'):
        """A plain device (template AddDevice) advertising `uuids`; returns its object path."""
        path = self.root.AddDevice(adapter, address, name, dbus_interface=BLUEZ_MOCK_IFACE,
                                   timeout=CALL_TIMEOUT)
        if uuids:
            self.set_uuids(path, uuids)
        return path

    def set_uuids(self, path, uuids):
        """Change a device's UUIDs (PropertiesChanged, as after service discovery)."""
        self.obj(path).UpdateProperties(
            DEVICE_IFACE, {'UUIDs': dbus.Array(uuids, signature='s')}, signature='sa{sv}',
            dbus_interface=MOCK_IFACE, timeout=CALL_TIMEOUT)

    def set_rssi(self, sensor_or_path, rssi):
        path = getattr(sensor_or_path, 'path', sensor_or_path)
        self.obj(path).UpdateProperties(DEVICE_IFACE, {'RSSI': dbus.Int16(rssi)},
                                        signature='sa{sv}', dbus_interface=MOCK_IFACE,
                                        timeout=CALL_TIMEOUT)

    def device_props(self, sensor_or_path):
        path = getattr(sensor_or_path, 'path', sensor_or_path)
        return self.obj(path).GetAll(DEVICE_IFACE, dbus_interface=dbus.PROPERTIES_IFACE,
                                     timeout=CALL_TIMEOUT)

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

    def add_sensor(self, address, name, kind, acquire='ok', pairing=None, battery=None,
                   advertise=None, flags=None, adapter='hci0'):
        """A sensor of SENSOR_KINDS `kind`: a device with Connect and Disconnect that export and
        remove its GATT objects. Returns a FakeSensor.

        acquire: how AcquireNotify answers: 'ok' (an fd), 'absent' (no such method:
            UnknownMethod), or a BlueZ error name ('NotSupported', 'NotPermitted', ...).
        pairing: None, or {call: error name} for the calls that fail while the device is not
            Paired ('default' for the others, 'NotAuthorized' if not given; 'agent': the Agent1
            method Pair asks, 'RequestConfirmation' if not given, 'none' for no question).
        battery: Battery1.Percentage exported while connected, or None for no Battery1.
        advertise: the UUIDs the device advertises (default: its service and Battery Service);
            the resolved service joins them on connect, as in BlueZ.
        flags: role -> characteristic Flags, overriding the kind's."""
        service_uuid, roles = SENSOR_KINDS[kind]
        options = dict(acquire=acquire, pairing=pairing, battery=battery, advertise=advertise,
                       flags=flags, adapter=adapter)
        path = f'{_adapter_path(adapter)}/dev_{address.replace(":", "_").upper()}'
        service_path = f'{path}/service{self.next_handle:04x}'
        chars = {}
        handle = self.next_handle
        cfg_chars = []
        for role, (uuid, role_flags) in roles.items():
            handle += 3
            char_path = f'{service_path}/char{handle:04x}'
            chars[role] = char_path
            cfg_chars.append({'role': role, 'path': char_path, 'uuid': uuid,
                              'flags': list((flags or {}).get(role, role_flags))})
        self.next_handle += 0x0010
        cfg = {'service': {'path': service_path, 'uuid': service_uuid}, 'chars': cfg_chars,
               'acquire': acquire, 'pairing': pairing, 'battery': battery}
        if advertise is None:
            advertise = [service_uuid, '0000180f-0000-1000-8000-00805f9b34fb']
        # announced once, complete (methods in place), with what it advertises
        self.root.AddSensorDevice(dbus.ObjectPath(_adapter_path(adapter)), address, name,
                                  dbus.Array(advertise, signature='s'), json.dumps(cfg),
                                  dbus_interface=FAKE_IFACE, timeout=CALL_TIMEOUT)
        sensor = FakeSensor(address, name, kind, str(path), service_path, chars, options)
        self.sensors.append(sensor)
        return sensor

    def readd_sensor(self, sensor):
        """Create `sensor`'s device again (e.g. after its adapter was removed and re-added), with
        the same options; `sensor` is updated in place (its sequence counters carry on, it is the
        same physical device)."""
        again = self.add_sensor(sensor.address, sensor.name, sensor.kind, **sensor.options)
        self.sensors.remove(again)
        sensor.path, sensor.service_path, sensor.chars = again.path, again.service_path, again.chars
        return sensor

    # --- state seen by the mock ---

    def method_calls(self, path, method):
        path = getattr(path, 'path', path)
        return self.obj(path).GetMethodCalls(method, signature='s', dbus_interface=MOCK_IFACE,
                                             timeout=CALL_TIMEOUT)

    def char_prop(self, sensor, role, name):
        """A property of the sensor's characteristic, None while it is not exported."""
        path = sensor.chars[role]
        if path not in self.managed_paths():
            return None
        try:
            return self.obj(path).Get(CHAR_IFACE, name, signature='ss',
                                      dbus_interface=dbus.PROPERTIES_IFACE, timeout=CALL_TIMEOUT)
        except dbus.exceptions.DBusException:
            return None

    def notify_path(self, sensor, role):
        """'acquire' (an AcquireNotify fd is held), 'start' (Notifying) or None."""
        if self.char_prop(sensor, role, 'NotifyAcquired'):
            return 'acquire'
        if self.char_prop(sensor, role, 'Notifying'):
            return 'start'
        return None

    def notifying(self, sensor, role):
        """The daemon subscribed to the characteristic, by either path."""
        return self.notify_path(sensor, role) is not None

    def subscriptions(self, sensor):
        """Every StartNotify/AcquireNotify/StopNotify/WriteValue call on the sensor's
        characteristics and every release of an acquired socket: [connection number (1 for the
        first successful Connect), role, call, result ('ok' or the error name)]."""
        return json.loads(str(self.obj(sensor.path).SubscriptionLog(
            dbus_interface=FAKE_IFACE, timeout=CALL_TIMEOUT)))

    def pair_calls(self, sensor):
        return int(self.obj(sensor.path).PairCalls(dbus_interface=FAKE_IFACE,
                                                   timeout=CALL_TIMEOUT))

    def agents(self):
        """{'agents': [{sender, path, capability, time}] in RegisterAgent order, 'calls':
        [[Agent1 method, device path, error name or '']]}."""
        return json.loads(str(self.root.Agents(dbus_interface=FAKE_IFACE, timeout=CALL_TIMEOUT)))

    def call_agent(self, method, device_path):
        """org.bluez's owner (the mock) calls the registered agent; returns (error name or '',
        reply arguments)."""
        err, reply = self.root.CallAgent(method, dbus.ObjectPath(device_path),
                                         dbus_interface=FAKE_IFACE, timeout=15)
        return str(err), json.loads(str(reply))

    def set_battery(self, sensor, percentage):
        self.obj(sensor.path).SetBattery(dbus.Byte(percentage), dbus_interface=FAKE_IFACE,
                                         timeout=CALL_TIMEOUT)

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
        """Wait until the daemon has subscribed (StartNotify or AcquireNotify) to every
        characteristic of `sensors`."""
        def all_on():
            return all(self.notifying(s, role) for s in sensors for role in s.chars)
        wait_until(all_on, timeout, 'spinewatchd to subscribe to every sensor characteristic',
                   interval=0.05)

    # --- notifications ---

    @staticmethod
    def _changed_args(value):
        return [CHAR_IFACE, dbus.Dictionary({'Value': value}, signature='sv'),
                dbus.Array([], signature='s')]

    def notify(self, sensor, role, payload):
        """A genuine notification: one packet on the socket AcquireNotify handed out, or else
        the mock (org.bluez's owner) emits PropertiesChanged with Value = `payload` (bytes) on
        the characteristic. Returns 'fd', 'signal' or 'dropped'."""
        return str(self.obj(sensor.chars[role]).Notify(
            dbus.Array(payload, signature='y'), dbus_interface=FAKE_IFACE, timeout=CALL_TIMEOUT))

    def notify_value(self, sensor, role, value):
        """PropertiesChanged with any D-Bus value as Value, from the mock, whatever the
        subscription (hostile-type tests)."""
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
        def record_signals(_conn, msg):
            if msg.get_type() == 4:
                seen.append(msg)
            return dbus.lowlevel.HANDLER_RESULT_NOT_YET_HANDLED  # (None would swallow calls)
        client.add_message_filter(record_signals)
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
        _self_test_acquire_and_pairing(fake, client, pump)
    finally:
        client.close()
        fake.stop()


def _self_test_acquire_and_pairing(fake, client, pump):
    """AcquireNotify hands out a SOCK_SEQPACKET fd with one packet per notification, closing
    it releases; a sensor that demands pairing refuses subscriptions until Pair, which asks the
    registered agent; Powered off disconnects."""
    import dbus.service
    import socket

    agent_calls = []

    class Agent(dbus.service.Object):
        @dbus.service.method('org.bluez.Agent1', in_signature='ou', out_signature='')
        def RequestConfirmation(self, device, passkey):
            agent_calls.append((str(device), int(passkey)))

    agent = Agent(client, '/test/agent')
    try:
        bluez = client.get_object(BLUEZ, '/org/bluez')
        bluez.RegisterAgent(dbus.ObjectPath('/test/agent'), 'NoInputNoOutput',
                            dbus_interface='org.bluez.AgentManager1', timeout=5)
        reg = fake.agents()['agents']
        check(reg and reg[-1]['sender'] == client.get_unique_name()
              and reg[-1]['path'] == '/test/agent' and reg[-1]['capability'] == 'NoInputNoOutput',
              f'RegisterAgent not recorded: {reg}')

        s = fake.add_sensor('C0:FF:EE:00:00:21', 'Spine Sound', 'sound', battery=77,
                            pairing={'default': 'NotAuthorized'})
        client.get_object(BLUEZ, s.path).Connect(dbus_interface=DEVICE_IFACE, timeout=5)
        pump(lambda m: m.get_member() == 'PropertiesChanged' and m.get_path() == s.path
             and m.get_args_list()[1].get('ServicesResolved'), 'ServicesResolved')
        props = fake.device_props(s)
        check(payloads.SPINE_SERVICE in props['UUIDs'], f'UUIDs after connect: {props["UUIDs"]}')
        om = client.get_object(BLUEZ, '/').GetManagedObjects(dbus_interface=OM_IFACE)
        check(om[s.path]['org.bluez.Battery1']['Percentage'] == 77, 'Battery1 missing')
        char = client.get_object(BLUEZ, s.chars['crack'])
        try:
            char.AcquireNotify({}, dbus_interface=CHAR_IFACE, timeout=5)
            raise AssertionError('AcquireNotify worked before pairing')
        except dbus.exceptions.DBusException as e:
            check(e.get_dbus_name() == 'org.bluez.Error.NotAuthorized', f'got {e}')
        result = []
        client.get_object(BLUEZ, s.path).Pair(
            dbus_interface=DEVICE_IFACE, timeout=5, reply_handler=lambda: result.append('ok'),
            error_handler=lambda e: result.append(e.get_dbus_name()))
        pump(lambda m: result, 'the Pair reply')
        check(result == ['ok'] and agent_calls == [(s.path, 123456)],
              f'Pair: {result}, agent calls {agent_calls}')
        check(fake.device_props(s)['Paired'] and fake.pair_calls(s) == 1, 'not Paired')

        fd, mtu = char.AcquireNotify({}, dbus_interface=CHAR_IFACE, timeout=5)
        check(int(mtu) == 517 and fake.notify_path(s, 'crack') == 'acquire', f'mtu {mtu}')
        sock = socket.socket(fileno=fd.take())
        check(sock.type == socket.SOCK_SEQPACKET, f'socket type {sock.type}')
        check(fake.notify(s, 'crack', b'\x01\x02\x03') == 'fd'
              and fake.notify(s, 'crack', b'\x04') == 'fd', 'notify did not use the fd')
        sock.settimeout(5)
        check(sock.recv(600) == b'\x01\x02\x03' and sock.recv(600) == b'\x04',
              'packets on the acquired socket')
        sock.close()
        wait_until(lambda: fake.notify_path(s, 'crack') is None, 5,
                   'NotifyAcquired to drop when the fd is closed')
        log = fake.subscriptions(s)
        check([e[2:] for e in log] == [['AcquireNotify', 'org.bluez.Error.NotAuthorized'],
                                       ['AcquireNotify', 'ok'], ['released', 'hup']]
              and all(e[0] == 1 for e in log), f'subscription log {log}')

        fake.set_powered(False)
        check(not fake.device_props(s)['Connected'] and not fake.adapter_prop('Powered'),
              'power off did not disconnect')
        try:
            client.get_object(BLUEZ, s.path).Connect(dbus_interface=DEVICE_IFACE, timeout=5)
            raise AssertionError('Connect worked while powered off')
        except dbus.exceptions.DBusException as e:
            check(e.get_dbus_name() == 'org.bluez.Error.NotReady', f'got {e}')
        fake.set_powered(True)
        ad = client.get_object(BLUEZ, fake.adapter)
        ad.SetDiscoveryFilter({'Transport': 'le'}, dbus_interface='org.bluez.Adapter1')
        ad.StartDiscovery(dbus_interface='org.bluez.Adapter1')
        check(fake.discovering() and fake.discovery_filter() == {'Transport': 'le'},
              f'discovery: {fake.discovery_filter()}')
        fake.remove_adapter()
        left = [p for p in fake.managed_paths() if p.startswith('/org/bluez/hci0')]
        check(not left, f'objects left after removing the adapter: {left}')
    finally:
        agent.remove_from_connection()
