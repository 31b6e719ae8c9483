"""
tests/integration/fakebluez_mock.py - the part of the fake BlueZ that runs INSIDE the
python-dbusmock process (imported there by the method bodies fakebluez.py installs; the mock
process gets this directory on PYTHONPATH). Plain functions of mock objects, so that the
behaviour of bluetoothd that matters to spinewatchd is written once, in Python, not in strings:

- sensors: Connect (fails while FailConnects are pending, or NotReady while the adapter is off),
  then, from the main loop, the GATT objects, Battery1 and ServicesResolved; Disconnect and link
  loss remove them again (and close acquired notify sockets, as bluetoothd does);
- notifications: StartNotify/StopNotify flip Notifying; AcquireNotify hands out one end of a
  SOCK_SEQPACKET socketpair (NotifyAcquired), and Notify() writes one packet per notification
  there, or emits PropertiesChanged(Value) when nothing was acquired; the peer closing its end
  (POLLHUP) releases it. Every subscription call is logged per connection of the device;
- pairing: sensors configured to need it answer NotAuthorized (or another error) to subscription
  calls until Paired; Device1.Pair asks the agent registered through AgentManager1.RegisterAgent
  (sender recorded by a message filter) asynchronously, like bluetoothd, and sets Paired when
  the agent agrees;
- adapters: Powered off disconnects every sensor; discovery and its filter per adapter.

State lives in attributes of the mock objects (`sw` on a sensor's device object).
"""

import json
import socket
import time

import dbus
import dbus.lowlevel
from dbusmock import mockobject
from gi.repository import GLib

DEV = 'org.bluez.Device1'
CHAR = 'org.bluez.GattCharacteristic1'
SERVICE = 'org.bluez.GattService1'
ADAPTER = 'org.bluez.Adapter1'
BATTERY = 'org.bluez.Battery1'
AGENT = 'org.bluez.Agent1'
AGENT_MANAGER = 'org.bluez.AgentManager1'
OM = 'org.freedesktop.DBus.ObjectManager'
PROPS = 'org.freedesktop.DBus.Properties'
FAKE = 'org.spinewatch.FakeSensor'
MTU = 517  # what AcquireNotify reports (BlueZ's maximum ATT MTU)

objects = mockobject.objects
STATE = {'agents': [], 'agent_calls': [], 'installed': False}


def error(name, text=''):
    return dbus.exceptions.DBusException(text or name, name='org.bluez.Error.' + name)


def changed(obj, iface, props):
    obj.EmitSignal(PROPS, 'PropertiesChanged', 'sa{sv}as',
                   [iface, dbus.Dictionary(props, signature='sv'), dbus.Array([], signature='s')])


def set_props(obj, iface, props):
    for k, v in props.items():
        obj.props[iface][k] = v
    changed(obj, iface, props)


def root():
    return objects['/']


def interfaces_added(path, ifaces):
    root().EmitSignal(OM, 'InterfacesAdded', 'oa{sa{sv}}', [dbus.ObjectPath(path), ifaces])


def interfaces_removed(path, names):
    root().EmitSignal(OM, 'InterfacesRemoved', 'oas',
                      [dbus.ObjectPath(path), dbus.Array(names, signature='s')])


def v(cls, value):
    """A D-Bus value of type `cls` as a property value (variant)."""
    return cls(value, variant_level=1)


# --- set-up -----------------------------------------------------------------------------------

def install(mock_root):
    """Once per mock process: the message filter that records RegisterAgent senders and serves
    Pair and CallAgent asynchronously."""
    if not STATE['installed']:
        mock_root.connection.add_message_filter(_filter)
        STATE['installed'] = True


def method(name, in_sig, out_sig, call):
    """A dbusmock method tuple whose body calls fakebluez_mock.`call`."""
    return (name, in_sig, out_sig, 'import fakebluez_mock as m\n' + call)


def configure_sensor(dev, config_json):
    """Make the device object `dev` a sensor: config from fakebluez.add_sensor (JSON)."""
    cfg = json.loads(config_json)
    dev.sw = {
        'cfg': cfg, 'connection': 0, 'connect_times': [], 'connect_failures': 0,
        'subscriptions': [], 'pair_calls': 0, 'battery': cfg.get('battery'),
    }
    dev.AddMethods(DEV, [
        method('Connect', '', '', 'm.connect(self)'),
        method('Disconnect', '', '', 'm.disconnect(self, "Disconnect")'),
        # served asynchronously by _filter; this body only runs if the filter is missing
        method('Pair', '', '', 'raise m.error("Failed", "pairing filter not installed")'),
        ('CancelPairing', '', '', ''),
    ])
    dev.AddMethods(FAKE, [
        ('FailConnects', 'u', '', 'self.sw["connect_failures"] = int(args[0])'),
        ('ConnectTimes', '', 'ad', "ret = dbus.Array(self.sw['connect_times'], signature='d')"),
        method('DropLink', '', '', 'm.disconnect(self, "link loss")'),
        method('SetBattery', 'y', '', 'm.set_battery(self, int(args[0]))'),
        method('SubscriptionLog', '', 's', 'ret = m.json.dumps(self.sw["subscriptions"])'),
        ('PairCalls', '', 'u', "ret = dbus.UInt32(self.sw['pair_calls'])"),
    ])


def add_sensor_device(adapter_path, address, name, uuids, config_json):
    """A device object like the template's AddDevice makes, configured as a sensor before it is
    announced (one InterfacesAdded with its advertised UUIDs), so that a daemon never sees it
    without our methods. Returns its path."""
    path = adapter_path + '/dev_' + address.replace(':', '_').upper()
    props = {
        'Address': v(dbus.String, address),
        'AddressType': v(dbus.String, 'public'),
        'Name': v(dbus.String, name),
        'Alias': v(dbus.String, name),
        'Icon': v(dbus.String, ''),
        'Class': v(dbus.UInt32, 0),
        'Appearance': v(dbus.UInt16, 0),
        'UUIDs': dbus.Array(uuids, signature='s', variant_level=1),
        'Paired': v(dbus.Boolean, False),
        'Bonded': v(dbus.Boolean, False),
        'Connected': v(dbus.Boolean, False),
        'Trusted': v(dbus.Boolean, False),
        'Blocked': v(dbus.Boolean, False),
        'WakeAllowed': v(dbus.Boolean, False),
        'Adapter': v(dbus.ObjectPath, adapter_path),
        'LegacyPairing': v(dbus.Boolean, False),
        'Modalias': v(dbus.String, ''),
        'RSSI': v(dbus.Int16, -79),
        'TxPower': v(dbus.Int16, 0),
        'ServicesResolved': v(dbus.Boolean, False),
    }
    if adapter_path not in objects:
        raise dbus.exceptions.DBusException(f'no adapter {adapter_path}',
                                            name='org.bluez.Mock.NoSuchAdapter')
    root().AddObject(path, DEV, props, [('ConnectProfile', 's', '', ''),
                                         ('DisconnectProfile', 's', '', '')])
    dev = objects[path]
    configure_sensor(dev, config_json)
    interfaces_added(path, {DEV: dev.props[DEV]})
    return path


def configure_adapter(adapter):
    """Discovery closer to bluetoothd's than the template's (which fails StartDiscovery before
    any SetDiscoveryFilter and exports the filter as a property): per-adapter filter, NotReady
    while off, InProgress when already discovering, Failed when stopping what was not started;
    and a test-only SetPowered that, like bluetoothd, disconnects everything on power-off."""
    adapter.sw_filter = None
    adapter.AddMethods(ADAPTER, [
        method('SetDiscoveryFilter', 'a{sv}', '', 'm.set_discovery_filter(self, args[0])'),
        method('StartDiscovery', '', '', 'm.start_discovery(self)'),
        method('StopDiscovery', '', '', 'm.stop_discovery(self)'),
    ])
    adapter.AddMethods(FAKE, [
        method('SetPowered', 'b', '', 'm.set_powered(self, bool(args[0]))'),
        method('DiscoveryFilter', '', 's', 'ret = m.discovery_filter_json(self)'),
    ])


# --- adapters -----------------------------------------------------------------------------------

def powered(adapter):
    return bool(adapter.props[ADAPTER].get('Powered', False))


def set_discovery_filter(adapter, filt):
    adapter.sw_filter = {str(k): _plain(val) for k, val in filt.items()}


def discovery_filter_json(adapter):
    return json.dumps(adapter.sw_filter)


def _plain(value):
    if isinstance(value, (dbus.Array, list)):
        return [_plain(x) for x in value]
    if isinstance(value, dbus.Boolean):
        return bool(value)
    if isinstance(value, (dbus.String, str)):
        return str(value)
    if isinstance(value, (int, float)):
        return value
    return repr(value)


def start_discovery(adapter):
    if not powered(adapter):
        raise error('NotReady', 'Resource Not Ready')
    if adapter.props[ADAPTER]['Discovering']:
        raise error('InProgress', 'Operation already in progress')
    set_props(adapter, ADAPTER, {'Discovering': v(dbus.Boolean, True)})


def stop_discovery(adapter):
    if not adapter.props[ADAPTER]['Discovering']:
        raise error('Failed', 'No discovery started')
    set_props(adapter, ADAPTER, {'Discovering': v(dbus.Boolean, False)})


def devices_of(adapter_path):
    return [o for p, o in list(objects.items())
            if p.startswith(adapter_path + '/') and hasattr(o, 'sw') and DEV in o.props]


def set_powered(adapter, on):
    if not on:
        for dev in devices_of(adapter.path):
            if dev.props[DEV]['Connected']:
                disconnect(dev, 'power off')
        if adapter.props[ADAPTER]['Discovering']:
            set_props(adapter, ADAPTER, {'Discovering': v(dbus.Boolean, False)})
    set_props(adapter, ADAPTER, {'Powered': v(dbus.Boolean, on)})


def remove_adapter(adapter_path):
    """bluetoothd losing an adapter (unplugged): every device's GATT objects and the device go
    (InterfacesRemoved naming all their interfaces), then the adapter itself."""
    for dev in devices_of(adapter_path):
        if dev.props[DEV]['Connected']:
            _remove_gatt(dev)
    for path in sorted((p for p in objects if p.startswith(adapter_path + '/')),
                       key=len, reverse=True):
        names = list(objects[path].props.keys())
        root().RemoveObject(path)
        interfaces_removed(path, names)
    names = list(objects[adapter_path].props.keys())
    root().RemoveObject(adapter_path)
    interfaces_removed(adapter_path, names)


# --- connections ----------------------------------------------------------------------------------

def connect(dev):
    sw = dev.sw
    sw['connect_times'].append(time.time())
    if sw['connect_failures'] > 0:
        sw['connect_failures'] -= 1
        raise error('Failed', 'le-connection-abort-by-local')
    adapter = objects.get(str(dev.props[DEV]['Adapter']))
    if adapter is None or not powered(adapter):
        raise error('NotReady', 'Resource Not Ready')
    if dev.props[DEV]['Connected']:
        raise error('AlreadyConnected', 'Already Connected')
    sw['connection'] += 1
    set_props(dev, DEV, {'Connected': v(dbus.Boolean, True)})
    # service discovery takes a moment; bluetoothd exports the objects afterwards
    GLib.timeout_add(50, _export_gatt, dev, sw['connection'])


def _char_methods(cfg_char, acquire):
    methods = [
        method('StartNotify', '', '', 'm.start_notify(self)'),
        method('StopNotify', '', '', 'm.stop_notify(self)'),
        ('ReadValue', 'a{sv}', 'ay', "ret = self.props['org.bluez.GattCharacteristic1']['Value']"),
        method('WriteValue', 'aya{sv}', '', 'm.write_value(self, args[0])'),
    ]
    if acquire != 'absent':
        methods.append(method('AcquireNotify', 'a{sv}', 'hq', 'ret = m.acquire_notify(self)'))
    return methods


def _export_gatt(dev, connection):
    sw, cfg = dev.sw, dev.sw['cfg']
    if not dev.props[DEV]['Connected'] or sw['connection'] != connection:
        return False
    svc = cfg['service']
    svc_props = {
        'UUID': v(dbus.String, svc['uuid']),
        'Device': v(dbus.ObjectPath, dev.path),
        'Primary': v(dbus.Boolean, True),
        'Includes': dbus.Array([], signature='o', variant_level=1),
    }
    root().AddObject(svc['path'], SERVICE, svc_props, [])
    interfaces_added(svc['path'], {SERVICE: svc_props})
    for ch in cfg['chars']:
        props = {
            'UUID': v(dbus.String, ch['uuid']),
            'Service': v(dbus.ObjectPath, svc['path']),
            'Flags': dbus.Array(ch['flags'], signature='s', variant_level=1),
            'Notifying': v(dbus.Boolean, False),
            'Value': dbus.Array(bytes.fromhex(ch.get('value', '')), signature='y',
                                variant_level=1),
        }
        if cfg['acquire'] != 'absent' and ('notify' in ch['flags'] or 'indicate' in ch['flags']):
            props['NotifyAcquired'] = v(dbus.Boolean, False)
        root().AddObject(ch['path'], CHAR, props, _char_methods(ch, cfg['acquire']))
        obj = objects[ch['path']]
        obj.AddMethods(FAKE, [method('Notify', 'ay', 's', 'ret = m.notify(self, args[0])')])
        obj.sw_device, obj.sw_role, obj.sw_sock, obj.sw_watch = dev, ch['role'], None, None
        interfaces_added(ch['path'], {CHAR: props})
    if sw['battery'] is not None:
        dev.props[BATTERY] = {'Percentage': v(dbus.Byte, sw['battery'])}
        interfaces_added(dev.path, {BATTERY: dev.props[BATTERY]})
    update = {'ServicesResolved': v(dbus.Boolean, True)}
    uuids = [str(u) for u in dev.props[DEV]['UUIDs']]
    if svc['uuid'] not in uuids:  # the resolved services join what was advertised
        update['UUIDs'] = dbus.Array(uuids + [svc['uuid']], signature='s', variant_level=1)
    set_props(dev, DEV, update)
    return False


def _remove_gatt(dev):
    cfg = dev.sw['cfg']
    for path in [c['path'] for c in reversed(cfg['chars'])] + [cfg['service']['path']]:
        if path in objects:
            obj = objects[path]
            if getattr(obj, 'sw_sock', None) is not None:
                _release(obj, emit=False)
            names = list(obj.props.keys())
            root().RemoveObject(path)
            interfaces_removed(path, names)
    if BATTERY in dev.props:
        del dev.props[BATTERY]
        interfaces_removed(dev.path, [BATTERY])


def disconnect(dev, why):
    if not dev.props[DEV]['Connected']:
        raise error('NotConnected', 'Not Connected')
    _remove_gatt(dev)
    set_props(dev, DEV, {'ServicesResolved': v(dbus.Boolean, False),
                         'Connected': v(dbus.Boolean, False)})


def set_battery(dev, percentage):
    dev.sw['battery'] = percentage
    if BATTERY in dev.props:
        set_props(dev, BATTERY, {'Percentage': v(dbus.Byte, percentage)})


# --- notifications ------------------------------------------------------------------------------

def _log_subscription(char, call, result):
    dev = char.sw_device
    dev.sw['subscriptions'].append([dev.sw['connection'], char.sw_role, call, result])


def _auth_error(char, call):
    """The error a pairing-demanding sensor answers while not paired, or None."""
    dev = char.sw_device
    need = dev.sw['cfg'].get('pairing')
    if need and not dev.props[DEV]['Paired']:
        err = need.get(call, need.get('default', 'NotAuthorized'))
        if err:
            return error(err, 'Insufficient authentication')
    return None


def start_notify(char):
    err = _auth_error(char, 'StartNotify')
    if err is None and char.sw_sock is not None:
        err = error('NotPermitted', 'Notify acquired')
    if err is not None:
        _log_subscription(char, 'StartNotify', err.get_dbus_name())
        raise err
    _log_subscription(char, 'StartNotify', 'ok')
    p = char.props[CHAR]
    if not p['Notifying']:
        set_props(char, CHAR, {'Notifying': v(dbus.Boolean, True)})


def stop_notify(char):
    _log_subscription(char, 'StopNotify', 'ok')
    if char.props[CHAR]['Notifying']:
        set_props(char, CHAR, {'Notifying': v(dbus.Boolean, False)})


def acquire_notify(char):
    mode = char.sw_device.sw['cfg']['acquire']
    err = _auth_error(char, 'AcquireNotify')
    flags = [str(f) for f in char.props[CHAR]['Flags']]
    if err is None and mode != 'ok':
        err = error(mode, 'Operation is not supported' if mode == 'NotSupported' else mode)
    if err is None and 'notify' not in flags:
        err = error('NotSupported', 'Operation is not supported')
    if err is None and char.sw_sock is not None:
        err = error('NotPermitted', 'Notify acquired')
    if err is None and char.props[CHAR]['Notifying']:
        err = error('InProgress', 'In Progress')
    if err is not None:
        _log_subscription(char, 'AcquireNotify', err.get_dbus_name())
        raise err
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    mine.setblocking(False)
    fd = dbus.types.UnixFd(theirs)  # a duplicate; ours is closed right away
    theirs.close()
    char.sw_sock = mine
    char.sw_watch = GLib.io_add_watch(mine.fileno(), GLib.PRIORITY_DEFAULT,
                                      GLib.IO_HUP | GLib.IO_ERR, _hup, char)
    _log_subscription(char, 'AcquireNotify', 'ok')
    set_props(char, CHAR, {'NotifyAcquired': v(dbus.Boolean, True)})
    return (fd, dbus.UInt16(MTU))


def _hup(_fd, _cond, char):
    char.sw_watch = None
    _log_subscription(char, 'released', 'hup')
    _release(char, emit=True)
    return False


def _release(char, emit):
    if char.sw_watch is not None:
        GLib.source_remove(char.sw_watch)
        char.sw_watch = None
    char.sw_sock.close()
    char.sw_sock = None
    if emit and char.path in objects:
        set_props(char, CHAR, {'NotifyAcquired': v(dbus.Boolean, False)})


def notify(char, payload):
    """One notification: a packet on the acquired socket, else PropertiesChanged(Value).
    Returns how it went out: 'fd', 'signal', or 'dropped' (socket gone or full)."""
    data = bytes(payload)
    if char.sw_sock is not None:
        try:
            char.sw_sock.send(data)
            return 'fd'
        except BlockingIOError:
            return 'dropped'
        except OSError:
            _log_subscription(char, 'released', 'send failed')
            _release(char, emit=True)
            return 'dropped'
    changed(char, CHAR, {'Value': dbus.Array(data, signature='y')})
    return 'signal'


def write_value(char, value):
    char.props[CHAR]['Value'] = dbus.Array(bytes(value), signature='y', variant_level=1)
    _log_subscription(char, 'WriteValue', bytes(value).hex())


# --- agent and pairing (asynchronous, from the message filter) -----------------------------------

def _current_agent():
    manager = objects.get('/org/bluez')
    paths = [str(p) for p in getattr(manager, 'agent_paths', [])]
    for agent in reversed(STATE['agents']):
        if agent['path'] in paths:
            return agent
    return None


AGENT_ARGS = {  # method -> (signature, args for a device path)
    'RequestConfirmation': ('ou', lambda dev: [dbus.ObjectPath(dev), dbus.UInt32(123456)]),
    'RequestAuthorization': ('o', lambda dev: [dbus.ObjectPath(dev)]),
    'RequestPinCode': ('o', lambda dev: [dbus.ObjectPath(dev)]),
    'RequestPasskey': ('o', lambda dev: [dbus.ObjectPath(dev)]),
    'DisplayPasskey': ('ouq', lambda dev: [dbus.ObjectPath(dev), dbus.UInt32(123456),
                                           dbus.UInt16(0)]),
    'AuthorizeService': ('os', lambda dev: [dbus.ObjectPath(dev),
                                            '0000180f-0000-1000-8000-00805f9b34fb']),
}


def _call_agent(conn, agent_method, dev_path, done):
    """Call the registered agent; done(error name or '', reply args)."""
    agent = _current_agent()
    if agent is None:
        STATE['agent_calls'].append([agent_method, dev_path, 'no agent'])
        done('org.bluez.Error.AuthenticationFailed', None)
        return
    sig, make = AGENT_ARGS[agent_method]

    def ok(*reply):
        STATE['agent_calls'].append([agent_method, dev_path, ''])
        done('', reply)

    def failed(e):
        STATE['agent_calls'].append([agent_method, dev_path, e.get_dbus_name() or str(e)])
        done(e.get_dbus_name() or 'error', None)

    conn.call_async(agent['sender'], agent['path'], AGENT, agent_method, sig, make(dev_path),
                    ok, failed, timeout=10)


def _reply(conn, msg, err=None, text=''):
    if err:
        conn.send_message(dbus.lowlevel.ErrorMessage(msg, err, text or err))
    else:
        conn.send_message(dbus.lowlevel.MethodReturnMessage(msg))


def _pair(conn, msg, dev):
    dev.sw['pair_calls'] += 1
    if dev.props[DEV]['Paired']:
        _reply(conn, msg, 'org.bluez.Error.AlreadyExists', 'Already Paired')
        return
    need = dev.sw['cfg'].get('pairing') or {}
    agent_method = need.get('agent', 'RequestConfirmation')

    def done(err, _reply_args):
        if err:
            _reply(conn, msg, 'org.bluez.Error.AuthenticationFailed', 'Authentication Failed')
            return
        set_props(dev, DEV, {'Paired': v(dbus.Boolean, True), 'Bonded': v(dbus.Boolean, True)})
        _reply(conn, msg)

    if agent_method == 'none':  # Just Works without asking anyone
        done('', None)
    else:
        _call_agent(conn, agent_method, dev.path, done)


def _call_agent_for_test(conn, msg):
    agent_method, dev_path = msg.get_args_list()[:2]

    def done(err, reply):
        out = dbus.lowlevel.MethodReturnMessage(msg)
        out.append(str(err), json.dumps([_plain(x) for x in (reply or [])]), signature='ss')
        conn.send_message(out)
    _call_agent(conn, str(agent_method), str(dev_path), done)


def _filter(conn, msg):
    if msg.get_type() != 1:  # method calls only
        return dbus.lowlevel.HANDLER_RESULT_NOT_YET_HANDLED
    member, path, iface = msg.get_member(), msg.get_path(), msg.get_interface()
    if member == 'RegisterAgent' and path == '/org/bluez' and iface in (AGENT_MANAGER, None):
        args = msg.get_args_list()
        if len(args) == 2:
            STATE['agents'].append({'sender': msg.get_sender(), 'path': str(args[0]),
                                    'capability': str(args[1]), 'time': time.time()})
        return dbus.lowlevel.HANDLER_RESULT_NOT_YET_HANDLED  # the template registers it
    if member == 'Pair' and iface in (DEV, None):
        dev = objects.get(path)
        if dev is not None and hasattr(dev, 'sw'):
            _pair(conn, msg, dev)
            return dbus.lowlevel.HANDLER_RESULT_HANDLED
    if member == 'CallAgent' and iface == FAKE and path == '/':
        _call_agent_for_test(conn, msg)
        return dbus.lowlevel.HANDLER_RESULT_HANDLED
    return dbus.lowlevel.HANDLER_RESULT_NOT_YET_HANDLED


def agents_json():
    return json.dumps({'agents': STATE['agents'], 'calls': STATE['agent_calls']})
