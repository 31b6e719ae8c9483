#!/usr/bin/python3
# tests/sim/fake_bluez.py - a simulated bluetoothd for spinewatch's demo and tests.
#
# Owns `org.bluez` on a private bus and exports what BlueZ's D-Bus API would show for one
# adapter with three LE wearables: the ObjectManager at /, Properties on every object,
# org.bluez.Adapter1 (hci0), org.bluez.Device1 per sensor and, while a sensor is connected,
# its GattService1 / GattCharacteristic1 / GattDescriptor1 objects. Notifications are
# PropertiesChanged(Value) signals sent only while some client has StartNotify'ed, counted
# per D-Bus sender as BlueZ does. Sample data comes from scenario.py, encoded by payloads.py.
# A test control interface, io.spinewatch.Sim1 at /io/spinewatch/sim, injects cracks,
# holds angles and drops links. See tests/sim/README.md.

import argparse
import logging
import os
import random
import re
import signal
import sys
import time
import xml.etree.ElementTree as ET

import dbus
import dbus.bus
import dbus.mainloop.glib
import dbus.service
from gi.repository import GLib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import payloads as P  # noqa: E402
import scenario as S  # noqa: E402

log = logging.getLogger("fake-bluez")

BLUEZ = "org.bluez"
OM_IFACE = "org.freedesktop.DBus.ObjectManager"
PROPS_IFACE = "org.freedesktop.DBus.Properties"
AGENT_MANAGER_IFACE = "org.bluez.AgentManager1"
PROFILE_MANAGER_IFACE = "org.bluez.ProfileManager1"
ADAPTER_IFACE = "org.bluez.Adapter1"
DEVICE_IFACE = "org.bluez.Device1"
SERVICE_IFACE = "org.bluez.GattService1"
CHRC_IFACE = "org.bluez.GattCharacteristic1"
DESC_IFACE = "org.bluez.GattDescriptor1"
SIM_IFACE = "io.spinewatch.Sim1"
SIM_PATH = "/io/spinewatch/sim"
ADAPTER_PATH = "/org/bluez/hci0"

# Delays of the simulated radio, in real milliseconds.
CONNECT_MS = 250          # LE connection established
DISCOVER_MS = 200         # primary service discovery, then ServicesResolved
CONNECT_TIMEOUT_MS = 1500  # connecting to a sensor that is out of range fails after this
ATT_MS = 15               # one ATT request/response (read, CCCD write)
REAPPEAR_MS = 1000        # a removed device is seen again this long after, while discovering


# ---------------------------------------------------------------------------- errors

def bluez_error(name, message):
    return dbus.DBusException(message, name="org.bluez.Error." + name)


def sim_error(name, message):
    return dbus.DBusException(message, name=SIM_IFACE + ".Error." + name)


def dbus_error(name, message):
    return dbus.DBusException(message, name="org.freedesktop.DBus.Error." + name)


# ------------------------------------------------------------------------- type helpers

_BASIC_SIGS = [(dbus.Boolean, "b"), (dbus.Byte, "y"), (dbus.Int16, "n"), (dbus.UInt16, "q"),
               (dbus.Int32, "i"), (dbus.UInt32, "u"), (dbus.Int64, "x"), (dbus.UInt64, "t"),
               (dbus.Double, "d"), (dbus.ObjectPath, "o"), (dbus.String, "s")]


def signature_of(value):
    """D-Bus signature of a dbus-python typed value (the types this simulator uses)."""
    if isinstance(value, dbus.ByteArray):
        return "ay"
    if isinstance(value, dbus.Array):
        return "a" + str(value.signature)
    if isinstance(value, dbus.Dictionary):
        return "a{%s}" % value.signature
    for cls, sig in _BASIC_SIGS:
        if isinstance(value, cls):
            return sig
    raise TypeError("untyped property value %r" % (value,))


def byte_array(data):
    return dbus.Array([dbus.Byte(b) for b in data], signature="y")


def address_to_path(address):
    return "%s/dev_%s" % (ADAPTER_PATH, address.replace(":", "_"))


# ------------------------------------------------------------------------ base objects

class PropertyObject(dbus.service.Object):
    """An exported object with org.freedesktop.DBus.Properties over `self.props`
    (interface -> {name: typed value}); writable properties have a setter."""

    def __init__(self, sim, path):
        super().__init__(sim.bus, path)
        self.sim = sim
        self.path = path
        self.on_bus = True
        self.props = {}
        self.setters = {}

    def interfaces(self):
        return dbus.Dictionary(
            {iface: dbus.Dictionary(p, signature="sv") for iface, p in self.props.items()},
            signature="sa{sv}")

    def set_prop(self, iface, name, value, always=False):
        """Store a property and emit PropertiesChanged if it changed (or `always`)."""
        old = self.props[iface].get(name)
        self.props[iface][name] = value
        if always or old is None or old != value or signature_of(old) != signature_of(value):
            self.PropertiesChanged(iface, dbus.Dictionary({name: value}, signature="sv"),
                                   dbus.Array([], signature="s"))

    def _iface_props(self, iface):
        if iface not in self.props:
            raise dbus_error("InvalidArgs", "No such interface '%s'" % iface)
        return self.props[iface]

    @dbus.service.method(PROPS_IFACE, in_signature="ss", out_signature="v")
    def Get(self, iface, name):
        props = self._iface_props(iface)
        if name not in props:
            raise dbus_error("InvalidArgs", "No such property '%s'" % name)
        return props[name]

    @dbus.service.method(PROPS_IFACE, in_signature="s", out_signature="a{sv}")
    def GetAll(self, iface):
        return dbus.Dictionary(self._iface_props(iface), signature="sv")

    @dbus.service.method(PROPS_IFACE, in_signature="ssv", out_signature="")
    def Set(self, iface, name, value):
        props = self._iface_props(iface)
        if name not in props:
            raise dbus_error("InvalidArgs", "No such property '%s'" % name)
        setter = self.setters.get((iface, name))
        if setter is None:
            raise dbus_error("PropertyReadOnly", "Property '%s' is not writable" % name)
        sig, func = setter
        try:
            ok = signature_of(value) == sig
        except TypeError:
            ok = False
        if not ok:
            raise bluez_error("InvalidArguments", "Invalid arguments in method call")
        func(value)

    @dbus.service.signal(PROPS_IFACE, signature="sa{sv}as")
    def PropertiesChanged(self, iface, changed, invalidated):
        pass

    @dbus.service.method(dbus.INTROSPECTABLE_IFACE, in_signature="", out_signature="s",
                         path_keyword="object_path", connection_keyword="connection")
    def Introspect(self, object_path, connection):
        """dbus-python's introspection plus the <property> elements it does not know."""
        xml = dbus.service.Object.Introspect(self, object_path, connection)
        root = ET.fromstring(xml)
        for iface, props in self.props.items():
            node = root.find("interface[@name='%s']" % iface)
            if node is None:
                node = ET.SubElement(root, "interface", name=iface)
            for name, value in props.items():
                access = "readwrite" if (iface, name) in self.setters else "read"
                ET.SubElement(node, "property", name=name, type=signature_of(value), access=access)
        return ('<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"\n'
                ' "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">\n'
                + ET.tostring(root, encoding="unicode"))


class ObjectManager(dbus.service.Object):
    """org.freedesktop.DBus.ObjectManager at /, over every exported BlueZ object."""

    def __init__(self, sim):
        super().__init__(sim.bus, "/")
        self.sim = sim

    @dbus.service.method(OM_IFACE, in_signature="", out_signature="a{oa{sa{sv}}}")
    def GetManagedObjects(self):
        return dbus.Dictionary({dbus.ObjectPath(p): o.interfaces()
                                for p, o in self.sim.objects.items()}, signature="oa{sa{sv}}")

    @dbus.service.signal(OM_IFACE, signature="oa{sa{sv}}")
    def InterfacesAdded(self, path, interfaces):
        pass

    @dbus.service.signal(OM_IFACE, signature="oas")
    def InterfacesRemoved(self, path, interfaces):
        pass


class BluezRoot(PropertyObject):
    """/org/bluez: the agent and profile managers (accepted, not used by the simulation)."""

    def __init__(self, sim):
        super().__init__(sim, "/org/bluez")
        self.props = {AGENT_MANAGER_IFACE: {}, PROFILE_MANAGER_IFACE: {}}
        self.agents = {}

    @dbus.service.method(AGENT_MANAGER_IFACE, in_signature="os", out_signature="",
                         sender_keyword="sender")
    def RegisterAgent(self, agent, capability, sender=None):
        if capability not in ("", "DisplayOnly", "DisplayYesNo", "KeyboardOnly",
                              "NoInputNoOutput", "KeyboardDisplay"):
            raise bluez_error("InvalidArguments", "Invalid arguments in method call")
        if sender in self.agents:
            raise bluez_error("AlreadyExists", "Already Exists")
        self.agents[sender] = agent

    @dbus.service.method(AGENT_MANAGER_IFACE, in_signature="o", out_signature="",
                         sender_keyword="sender")
    def UnregisterAgent(self, agent, sender=None):
        if self.agents.get(sender) != agent:
            raise bluez_error("DoesNotExist", "Does Not Exist")
        del self.agents[sender]

    @dbus.service.method(AGENT_MANAGER_IFACE, in_signature="o", out_signature="",
                         sender_keyword="sender")
    def RequestDefaultAgent(self, agent, sender=None):
        if self.agents.get(sender) != agent:
            raise bluez_error("DoesNotExist", "Does Not Exist")

    def forget_sender(self, sender):
        self.agents.pop(sender, None)


# ------------------------------------------------------------------------------ adapter

_FILTER_SIGS = {"UUIDs": "as", "RSSI": "n", "Pathloss": "q", "Transport": "s",
                "DuplicateData": "b", "Discoverable": "b", "Pattern": "s"}


class Adapter(PropertyObject):
    def __init__(self, sim):
        super().__init__(sim, ADAPTER_PATH)
        self.sessions = set()          # senders that called StartDiscovery
        self.filters = {}              # sender -> discovery filter
        self.props[ADAPTER_IFACE] = {
            "Address": dbus.String("00:1A:7D:DA:71:13"),
            "AddressType": dbus.String("public"),
            "Name": dbus.String("spinewatch-sim"),
            "Alias": dbus.String("spinewatch-sim"),
            "Class": dbus.UInt32(0),
            "Powered": dbus.Boolean(True),
            "Discoverable": dbus.Boolean(False),
            "DiscoverableTimeout": dbus.UInt32(180),
            "Pairable": dbus.Boolean(True),
            "PairableTimeout": dbus.UInt32(0),
            "Discovering": dbus.Boolean(False),
            "UUIDs": dbus.Array(["00001800-0000-1000-8000-00805f9b34fb",
                                 "00001801-0000-1000-8000-00805f9b34fb",
                                 "0000180a-0000-1000-8000-00805f9b34fb"], signature="s"),
            "Modalias": dbus.String("usb:v1D6Bp0246d0542"),
            "Roles": dbus.Array(["central", "peripheral"], signature="s"),
        }
        self.setters[(ADAPTER_IFACE, "Powered")] = ("b", self._set_powered)
        self.setters[(ADAPTER_IFACE, "Alias")] = ("s", self._set_alias)
        self.setters[(ADAPTER_IFACE, "Discoverable")] = ("b", self._set_flag("Discoverable"))
        self.setters[(ADAPTER_IFACE, "Pairable")] = ("b", self._set_flag("Pairable"))

    @property
    def powered(self):
        return bool(self.props[ADAPTER_IFACE]["Powered"])

    @property
    def discovering(self):
        return bool(self.props[ADAPTER_IFACE]["Discovering"])

    def _set_flag(self, name):
        def setter(value):
            self.set_prop(ADAPTER_IFACE, name, dbus.Boolean(value))
        return setter

    def _set_alias(self, value):
        name = self.props[ADAPTER_IFACE]["Name"]
        self.set_prop(ADAPTER_IFACE, "Alias", dbus.String(value or name))

    def _set_powered(self, value):
        if bool(value) == self.powered:
            return
        if not value:
            log.info("adapter powered off: dropping every link")
            for dev in self.sim.devices.values():
                dev.link_down("org.bluez.Reason.Local", "Adapter powered off")
            self.sessions.clear()
            self.filters.clear()
            self.set_prop(ADAPTER_IFACE, "Discovering", dbus.Boolean(False))
        self.set_prop(ADAPTER_IFACE, "Powered", dbus.Boolean(value))

    def _update_discovering(self):
        self.set_prop(ADAPTER_IFACE, "Discovering", dbus.Boolean(bool(self.sessions)))

    @dbus.service.method(ADAPTER_IFACE, in_signature="", out_signature="", sender_keyword="sender")
    def StartDiscovery(self, sender=None):
        if not self.powered:
            raise bluez_error("NotReady", "Resource Not Ready")
        if sender in self.sessions:
            raise bluez_error("InProgress", "Operation already in progress")
        self.sessions.add(sender)
        self.sim.watch_sender(sender)
        self._update_discovering()

    @dbus.service.method(ADAPTER_IFACE, in_signature="", out_signature="", sender_keyword="sender")
    def StopDiscovery(self, sender=None):
        if not self.powered:
            raise bluez_error("NotReady", "Resource Not Ready")
        if sender not in self.sessions:
            raise bluez_error("Failed", "No discovery started")
        self.sessions.discard(sender)
        self.filters.pop(sender, None)
        self._update_discovering()

    @dbus.service.method(ADAPTER_IFACE, in_signature="a{sv}", out_signature="",
                         sender_keyword="sender")
    def SetDiscoveryFilter(self, properties, sender=None):
        if not self.powered:
            raise bluez_error("NotReady", "Resource Not Ready")
        for key, value in properties.items():
            try:
                ok = key in _FILTER_SIGS and signature_of(value) == _FILTER_SIGS[key]
            except TypeError:
                ok = False
            if ok and key == "Transport" and value not in ("auto", "bredr", "le"):
                ok = False
            if not ok:
                raise bluez_error("InvalidArguments", "Invalid arguments in method call")
        if properties:
            self.filters[sender] = dict(properties)
            self.sim.watch_sender(sender)
        else:
            self.filters.pop(sender, None)     # an empty filter clears it

    @dbus.service.method(ADAPTER_IFACE, in_signature="", out_signature="as")
    def GetDiscoveryFilters(self):
        return dbus.Array(sorted(_FILTER_SIGS), signature="s")

    @dbus.service.method(ADAPTER_IFACE, in_signature="o", out_signature="")
    def RemoveDevice(self, path):
        dev = next((d for d in self.sim.devices.values() if d.path == path), None)
        if dev is None or not dev.exported:
            raise bluez_error("DoesNotExist", "Does Not Exist")
        dev.remove()

    def forget_sender(self, sender):
        self.filters.pop(sender, None)
        if sender in self.sessions:
            self.sessions.discard(sender)
            self._update_discovering()


# ------------------------------------------------------------------------------- GATT

class GattService(PropertyObject):
    def __init__(self, device, handle, uuid):
        super().__init__(device.sim, "%s/service%04x" % (device.path, handle))
        self.props[SERVICE_IFACE] = {
            "UUID": dbus.String(uuid),
            "Device": dbus.ObjectPath(device.path),
            "Primary": dbus.Boolean(True),
            "Includes": dbus.Array([], signature="o"),
        }
        self.characteristics = []


class GattCharacteristic(PropertyObject):
    """A remote characteristic. `role` says what feeds it: 'posture', 'crack', 'microbit'
    or None (a static value)."""

    def __init__(self, device, service, handle, uuid, flags, role=None, value=b""):
        super().__init__(device.sim, "%s/char%04x" % (service.path, handle))
        self.device = device
        self.role = role
        self.flags = list(flags)
        self.static_value = bytes(value)
        self.subscribers = {}          # sender -> "pending" | "active"
        self.reading = False
        self.seq = 0
        self.loss = 0.0
        props = {
            "UUID": dbus.String(uuid),
            "Service": dbus.ObjectPath(service.path),
            "Flags": dbus.Array(self.flags, signature="s"),
            "MTU": dbus.UInt16(247),
        }
        if self.can_notify:
            props["Notifying"] = dbus.Boolean(False)
            props["NotifyAcquired"] = dbus.Boolean(False)
        self.props[CHRC_IFACE] = props
        self.descriptors = []

    @property
    def can_notify(self):
        return "notify" in self.flags or "indicate" in self.flags

    @property
    def notifying(self):
        return any(state == "active" for state in self.subscribers.values())

    def _update_notifying(self):
        if self.can_notify:
            self.set_prop(CHRC_IFACE, "Notifying", dbus.Boolean(self.notifying))

    def _store_value(self, data, always):
        self.set_prop(CHRC_IFACE, "Value", byte_array(data), always=always)

    def notify(self, data):
        """Send one notification: PropertiesChanged(Value) from this object. The caller
        has checked `notifying`."""
        self._store_value(data, always=True)

    @dbus.service.method(CHRC_IFACE, in_signature="a{sv}", out_signature="ay",
                         async_callbacks=("reply", "error"))
    def ReadValue(self, options, reply, error):
        if "read" not in self.flags:
            raise bluez_error("NotPermitted", "Read not permitted")
        offset = options.get("offset", 0)
        if self.reading:
            raise bluez_error("InProgress", "In Progress")
        self.reading = True

        def done():
            self.reading = False
            if not self.device.gatt_exported(self):
                error(bluez_error("Failed", "Not connected"))
                return False
            data = self.device.read_value(self)
            if offset > len(data):
                error(bluez_error("InvalidOffset", "Invalid offset"))
                return False
            self._store_value(data, always=False)   # BlueZ caches the read value
            reply(byte_array(data[offset:]))
            return False
        GLib.timeout_add(ATT_MS, done)

    @dbus.service.method(CHRC_IFACE, in_signature="aya{sv}", out_signature="")
    def WriteValue(self, value, options):
        raise bluez_error("NotPermitted", "Write not permitted")

    @dbus.service.method(CHRC_IFACE, in_signature="a{sv}", out_signature="hq")
    def AcquireNotify(self, options):
        raise bluez_error("NotSupported", "Operation is not supported")

    @dbus.service.method(CHRC_IFACE, in_signature="", out_signature="",
                         sender_keyword="sender", async_callbacks=("reply", "error"))
    def StartNotify(self, sender=None, reply=None, error=None):
        if self.device.state == "disconnecting":
            raise bluez_error("NotConnected", "Not Connected")
        if not self.can_notify:
            raise bluez_error("NotSupported", "Operation is not supported")
        state = self.subscribers.get(sender)
        if state == "active":
            reply()                   # BlueZ >= 5.6x: a second StartNotify is a no-op
            return
        if state == "pending":
            raise bluez_error("InProgress", "In Progress")
        self.subscribers[sender] = "pending"
        self.sim.watch_sender(sender)

        def cccd_written():
            if self.subscribers.get(sender) != "pending" or not self.device.gatt_exported(self):
                error(bluez_error("Failed", "Characteristic not available"))
                return False
            first = not self.notifying
            self.subscribers[sender] = "active"
            if first:
                self.device.notify_started(self)
            self._update_notifying()
            reply()
            self.sim.clock.start()
            log.debug("%s: %s subscribed to %s", self.device.address, sender, self.role)
            return False
        GLib.timeout_add(ATT_MS, cccd_written)

    @dbus.service.method(CHRC_IFACE, in_signature="", out_signature="", sender_keyword="sender")
    def StopNotify(self, sender=None):
        if sender not in self.subscribers:
            raise bluez_error("Failed", "No notify session started")
        del self.subscribers[sender]
        self._update_notifying()

    def forget_sender(self, sender):
        if self.subscribers.pop(sender, None) is not None:
            log.debug("%s: %s left, unsubscribed from %s", self.device.address, sender, self.role)
            self._update_notifying()


class GattDescriptor(PropertyObject):
    """The Client Characteristic Configuration descriptor of a notifying characteristic."""

    def __init__(self, chrc, handle):
        super().__init__(chrc.sim, "%s/desc%04x" % (chrc.path, handle))
        self.chrc = chrc
        self.props[DESC_IFACE] = {
            "UUID": dbus.String(P.CCCD_UUID),
            "Characteristic": dbus.ObjectPath(chrc.path),
            "Flags": dbus.Array(["read", "write"], signature="s"),
        }

    @dbus.service.method(DESC_IFACE, in_signature="a{sv}", out_signature="ay")
    def ReadValue(self, options):
        data = b"\x01\x00" if self.chrc.notifying else b"\x00\x00"
        self.set_prop(DESC_IFACE, "Value", byte_array(data))
        return byte_array(data)

    @dbus.service.method(DESC_IFACE, in_signature="aya{sv}", out_signature="")
    def WriteValue(self, value, options):
        # BlueZ owns the CCCD: clients use StartNotify/StopNotify.
        raise bluez_error("NotPermitted", "Write not permitted")


# ------------------------------------------------------------------------------ devices

class DeviceSpec:
    def __init__(self, address, name, kind, uuids, rssi, appearance=None):
        self.address, self.name, self.kind = address, name, kind
        self.uuids, self.rssi, self.appearance = uuids, rssi, appearance


DEVICE_SPECS = [
    DeviceSpec("C0:FF:EE:00:00:01", "Spine Clip", "clip", [P.SPINE_SERVICE_UUID], -58, 0x0540),
    DeviceSpec("C0:FF:EE:00:00:02", "Spine Mic", "mic", [P.SPINE_SERVICE_UUID], -64, 0x0540),
    DeviceSpec("C0:FF:EE:00:00:03", "BBC micro:bit [zotiv]", "microbit",
               [P.MICROBIT_ACCEL_SERVICE_UUID], -71),
]


class Device(PropertyObject):
    """A remote LE sensor. state: disconnected, connecting, resolving, connected,
    disconnecting."""

    def __init__(self, sim, spec, track, mount):
        super().__init__(sim, address_to_path(spec.address))
        self.spec = spec
        self.address = spec.address
        self.kind = spec.kind
        self.track = track
        self.mount = mount
        self.state = "disconnected"
        self.exported = False
        self.reachable = True
        self.removed_at = None
        self.pending_connect = None     # (reply, error)
        self.pending_pair = None
        self.connect_timer = 0
        self.services = []
        self.angle_override = None
        self.loss = 0.0
        self.rng = random.Random("%s/%s/noise" % (sim.args.seed, spec.address))
        self.stream = {}                # chrc -> [real start, samples sent]
        self.last_sample = None
        props = {
            "Address": dbus.String(spec.address),
            "AddressType": dbus.String("random"),
            "Name": dbus.String(spec.name),
            "Alias": dbus.String(spec.name),
            "Paired": dbus.Boolean(False),
            "Bonded": dbus.Boolean(False),
            "Trusted": dbus.Boolean(False),
            "Blocked": dbus.Boolean(False),
            "LegacyPairing": dbus.Boolean(False),
            "RSSI": dbus.Int16(spec.rssi),
            "Connected": dbus.Boolean(False),
            "UUIDs": dbus.Array(spec.uuids, signature="s"),
            "Adapter": dbus.ObjectPath(ADAPTER_PATH),
            "ServicesResolved": dbus.Boolean(False),
            "WakeAllowed": dbus.Boolean(False),
        }
        if spec.appearance is not None:
            props["Appearance"] = dbus.UInt16(spec.appearance)
        self.props[DEVICE_IFACE] = props
        self.setters[(DEVICE_IFACE, "Alias")] = ("s", self._set_alias)
        self.setters[(DEVICE_IFACE, "Trusted")] = ("b", self._set_flag("Trusted"))
        self.setters[(DEVICE_IFACE, "Blocked")] = ("b", self._set_blocked)
        self.setters[(DEVICE_IFACE, "WakeAllowed")] = ("b", self._set_flag("WakeAllowed"))

    # -- properties
    def _dev(self, name, value):
        self.set_prop(DEVICE_IFACE, name, value)

    def _set_flag(self, name):
        def setter(value):
            self._dev(name, dbus.Boolean(value))
        return setter

    def _set_alias(self, value):
        self._dev("Alias", dbus.String(value or self.spec.name))

    def _set_blocked(self, value):
        if value:
            self.link_down("org.bluez.Reason.Local", "Device blocked")
        self._dev("Blocked", dbus.Boolean(value))

    @property
    def connected(self):
        return self.state in ("resolving", "connected")

    # -- Device1 methods
    @dbus.service.method(DEVICE_IFACE, in_signature="", out_signature="",
                         async_callbacks=("reply", "error"))
    def Connect(self, reply, error):
        if not self.sim.adapter.powered:
            raise bluez_error("NotReady", "Resource Not Ready")
        if self.props[DEVICE_IFACE]["Blocked"]:
            raise bluez_error("Failed", "Device is blocked")
        if self.state == "connected":
            reply()
            return
        if self.state in ("connecting", "resolving", "disconnecting"):
            raise bluez_error("InProgress", "In Progress")
        self.state = "connecting"
        self.pending_connect = (reply, error)
        log.info("%s: connecting", self.address)
        delay = CONNECT_MS if self.reachable else CONNECT_TIMEOUT_MS
        self.connect_timer = GLib.timeout_add(delay, self._link_up)

    def _link_up(self):
        self.connect_timer = 0
        if self.state != "connecting":
            return False
        if not self.reachable:
            log.info("%s: connection attempt failed (out of range)", self.address)
            self.state = "disconnected"
            self._finish_connect(bluez_error("Failed", "le-connection-abort-by-local"))
            return False
        self.state = "resolving"
        self._dev("Connected", dbus.Boolean(True))
        self.connect_timer = GLib.timeout_add(DISCOVER_MS, self._services_resolved)
        return False

    def _services_resolved(self):
        self.connect_timer = 0
        if self.state != "resolving":
            return False
        self._build_gatt()
        self.state = "connected"
        self._dev("ServicesResolved", dbus.Boolean(True))
        log.info("%s: connected, services resolved", self.address)
        self._finish_connect(None)
        return False

    def _finish_connect(self, err):
        if self.pending_connect:
            reply, error = self.pending_connect
            self.pending_connect = None
            if err is None:
                reply()
            else:
                error(err)

    @dbus.service.method(DEVICE_IFACE, in_signature="", out_signature="")
    def Disconnect(self):
        if self.state == "disconnected":
            raise bluez_error("NotConnected", "Not Connected")
        self.link_down("org.bluez.Reason.Local", "Disconnected by local host")

    def link_down(self, reason, message):
        """The link is gone (Disconnect, link loss, adapter off): as BlueZ does for an
        unbonded LE device, ServicesResolved and Connected go false and the GATT objects
        are removed. A pending Connect fails."""
        if self.connect_timer:
            GLib.source_remove(self.connect_timer)
            self.connect_timer = 0
        was = self.state
        if was == "disconnected":
            return
        self.state = "disconnecting"
        if was == "connecting":
            self.state = "disconnected"
            self._finish_connect(bluez_error("Failed", "le-connection-abort-by-local"))
            return
        log.info("%s: link down (%s)", self.address, message)
        self._dev("ServicesResolved", dbus.Boolean(False))
        self._dev("Connected", dbus.Boolean(False))
        if was in ("resolving", "connected"):
            self.Disconnected(reason, message)
        self._drop_gatt()
        self.state = "disconnected"
        self._finish_connect(bluez_error("Failed", "le-connection-abort-by-remote"))

    @dbus.service.signal(DEVICE_IFACE, signature="ss")
    def Disconnected(self, reason, message):
        pass

    @dbus.service.method(DEVICE_IFACE, in_signature="", out_signature="",
                         async_callbacks=("reply", "error"))
    def Pair(self, reply, error):
        if self.props[DEVICE_IFACE]["Paired"]:
            raise bluez_error("AlreadyExists", "Already Exists")
        if self.pending_pair:
            raise bluez_error("InProgress", "In Progress")
        self.pending_pair = (reply, error)

        def paired():
            if self.pending_pair:
                self._dev("Paired", dbus.Boolean(True))
                self._dev("Bonded", dbus.Boolean(True))
                self.pending_pair[0]()
                self.pending_pair = None
            return False
        GLib.timeout_add(300, paired)

    @dbus.service.method(DEVICE_IFACE, in_signature="", out_signature="")
    def CancelPairing(self):
        if not self.pending_pair:
            raise bluez_error("DoesNotExist", "Does Not Exist")
        self.pending_pair[1](bluez_error("AuthenticationCanceled", "Authentication Canceled"))
        self.pending_pair = None

    @dbus.service.method(DEVICE_IFACE, in_signature="s", out_signature="")
    def ConnectProfile(self, uuid):
        raise bluez_error("NotAvailable", "Operation currently not available")

    @dbus.service.method(DEVICE_IFACE, in_signature="s", out_signature="")
    def DisconnectProfile(self, uuid):
        raise bluez_error("NotSupported", "Operation is not supported")

    # -- export, removal, rediscovery
    def export(self):
        self.exported = True
        self.removed_at = None
        self.sim.export(self)

    def remove(self):
        """Adapter1.RemoveDevice: disconnect, forget pairing, unexport."""
        self.link_down("org.bluez.Reason.Local", "Device removed")
        self.sim.unexport(self)
        self.exported = False
        self.removed_at = time.monotonic()
        for name, value in (("Paired", False), ("Bonded", False), ("Trusted", False)):
            self.props[DEVICE_IFACE][name] = dbus.Boolean(value)
        self.props[DEVICE_IFACE]["Alias"] = dbus.String(self.spec.name)
        log.info("%s: removed", self.address)

    # -- GATT database
    def _build_gatt(self):
        """Export the sensor's services as BlueZ does after discovery: paths from the
        attribute handles (GAP and GATT services at 0x0001-0x0009 are not exported)."""
        handle = [0x000a]

        def service(uuid):
            svc = GattService(self, handle[0], uuid)
            handle[0] += 1
            self.services.append(svc)
            return svc

        def characteristic(svc, uuid, flags, role=None, value=b""):
            chrc = GattCharacteristic(self, svc, handle[0], uuid, flags, role, value)
            handle[0] += 2
            if chrc.can_notify:
                chrc.descriptors.append(GattDescriptor(chrc, handle[0]))
                handle[0] += 1
            chrc.seq = self.rng.randrange(65536 - 48, 65536)   # wraps soon: tests the host
            chrc.loss = self.loss
            svc.characteristics.append(chrc)

        if self.kind in ("clip", "mic"):
            svc = service(P.SPINE_SERVICE_UUID)
            if self.kind == "clip":
                characteristic(svc, P.POSTURE_UUID, ["read", "notify"], "posture")
            else:
                characteristic(svc, P.CRACK_UUID, ["notify"], "crack")
            handle[0] = (handle[0] + 0x0f) & ~0x0f
            dis = service(P.DEVICE_INFO_SERVICE_UUID)
            characteristic(dis, P.MANUFACTURER_NAME_UUID, ["read"], value=b"spinewatch")
            characteristic(dis, P.FIRMWARE_REVISION_UUID, ["read"], value=b"1.0.3")
        else:
            svc = service(P.MICROBIT_ACCEL_SERVICE_UUID)
            characteristic(svc, P.MICROBIT_ACCEL_DATA_UUID, ["read", "notify"], "microbit")
            characteristic(svc, P.MICROBIT_ACCEL_PERIOD_UUID, ["read"],
                           value=b"\x32\x00")   # 50 ms: the simulator sends at --rate
        for svc in self.services:
            self.sim.export(svc)
            for chrc in svc.characteristics:
                self.sim.export(chrc)
                for desc in chrc.descriptors:
                    self.sim.export(desc)

    def _drop_gatt(self):
        for svc in self.services:
            for chrc in svc.characteristics:
                for desc in chrc.descriptors:
                    self.sim.unexport(desc)
                self.sim.unexport(chrc)
                chrc.subscribers.clear()
            self.sim.unexport(svc)
        self.services = []
        self.stream.clear()

    def characteristics(self):
        return [c for s in self.services for c in s.characteristics]

    def gatt_exported(self, chrc):
        return self.state == "connected" and chrc in self.characteristics()

    def data_characteristic(self, role):
        return next((c for c in self.characteristics() if c.role == role), None)

    # -- data
    def notify_started(self, chrc):
        self.stream[chrc] = [time.monotonic(), 0]

    def sample(self, t):
        """The gravity vector at scenario time t, with sensor noise."""
        if self.angle_override is not None:
            flex, lat, sigma = self.angle_override, 0.0, 4.0
        else:
            flex, lat = self.track.flexion(t), self.track.lateral(t)
            sigma = 25.0 if self.track.moving(t) else 4.0
        g = self.mount.gravity(flex, lat)
        return tuple(c + self.rng.gauss(0.0, sigma) for c in g)

    def encode(self, chrc, vec):
        if chrc.role == "posture":
            return P.encode_posture(chrc.seq, *vec)
        return P.encode_microbit(*vec)

    def read_value(self, chrc):
        if chrc.role in ("posture", "microbit"):
            vec = self.last_sample or self.sample(self.sim.clock.now())
            return self.encode(chrc, vec)
        return chrc.static_value

    def send(self, chrc, data):
        """Notify `data` unless the simulated radio loses it (the caller has already
        counted it in the sequence counter). Returns True if it went out."""
        if chrc.loss and self.rng.random() < chrc.loss:
            return False
        chrc.notify(data)
        return True

    def tick(self, t, now, rate, speed):
        """Send the posture samples due by real time `now` (scenario time t)."""
        for chrc, st in list(self.stream.items()):
            if not chrc.notifying or chrc.role not in ("posture", "microbit"):
                continue
            due = int((now - st[0]) * rate) - st[1]
            if due > rate:                 # the loop stalled: skip ahead, do not flood
                st[1] += due - 1
                due = 1
            for i in range(due):
                ti = t - (due - 1 - i) * speed / rate
                self.last_sample = self.sample(ti)
                if chrc.role == "posture":
                    chrc.seq = (chrc.seq + 1) & 0xFFFF
                self.send(chrc, self.encode(chrc, self.last_sample))
                st[1] += 1

    def send_crack(self, kind, intensity, duration_ms, count, age_ms):
        chrc = self.data_characteristic("crack")
        if chrc is None or not chrc.notifying:
            return False
        chrc.seq = (chrc.seq + 1) & 0xFFFF
        data = P.encode_crack(chrc.seq, kind, intensity, duration_ms, count, age_ms)
        log.info("%s: crack %s intensity=%d duration=%dms count=%d age=%dms", self.address,
                 kind, intensity, duration_ms, count, age_ms)
        return self.send(chrc, data)


# ------------------------------------------------------------------------------ control

class SimControl(dbus.service.Object):
    """io.spinewatch.Sim1: the test control interface (not part of BlueZ's API)."""

    def __init__(self, sim):
        super().__init__(sim.bus, SIM_PATH)
        self.sim = sim

    def _device(self, address):
        dev = self.sim.devices.get(str(address).upper())
        if dev is None or not dev.exported:
            raise sim_error("UnknownDevice", "No device %s" % address)
        return dev

    def _crack(self, address, kind, intensity, duration_ms, count, age_ms):
        dev = self._device(address)
        if dev.kind != "mic":
            raise sim_error("NotSupported", "%s has no Crack characteristic" % address)
        if kind not in P.CRACK_KINDS or not 0 <= intensity <= 100 or count < 1:
            raise sim_error("InvalidArguments",
                            "kind must be pop|click|grind, intensity 0-100, count >= 1")
        return dbus.Boolean(dev.send_crack(str(kind), int(intensity), int(duration_ms),
                                           int(count), int(age_ms)))

    @dbus.service.method(SIM_IFACE, in_signature="ssyqy", out_signature="b")
    def InjectCrack(self, address, kind, intensity, duration_ms, count):
        """Notify one crack now (age 0). Returns false if nobody is subscribed."""
        return self._crack(address, kind, intensity, duration_ms, count, 0)

    @dbus.service.method(SIM_IFACE, in_signature="ssyqyq", out_signature="b")
    def InjectCrackAged(self, address, kind, intensity, duration_ms, count, age_ms):
        """As InjectCrack, with the onset age_ms before the notification."""
        return self._crack(address, kind, intensity, duration_ms, count, age_ms)

    @dbus.service.method(SIM_IFACE, in_signature="ssay", out_signature="b")
    def SendRaw(self, address, characteristic, value):
        """Notify arbitrary bytes on a characteristic ('posture', 'crack', 'microbit' or
        its UUID); the sequence counter is not touched."""
        dev = self._device(address)
        chrc = next((c for c in dev.characteristics()
                     if characteristic in (c.role, c.props[CHRC_IFACE]["UUID"])), None)
        if chrc is None:
            raise sim_error("InvalidArguments", "%s has no characteristic %s (connected?)"
                            % (address, characteristic))
        if not chrc.notifying:
            return dbus.Boolean(False)
        chrc.notify(bytes(value))
        return dbus.Boolean(True)

    @dbus.service.method(SIM_IFACE, in_signature="sd", out_signature="")
    def SetAngle(self, address, degrees):
        """Hold a posture sensor at `degrees` of flexion from upright until Resume()."""
        dev = self._device(address)
        if dev.kind == "mic":
            raise sim_error("NotSupported", "%s is not a posture sensor" % address)
        if not 0.0 <= degrees <= 180.0:
            raise sim_error("InvalidArguments", "degrees must be 0-180")
        dev.angle_override = float(degrees)
        log.info("%s: angle held at %.1f degrees", dev.address, degrees)

    @dbus.service.method(SIM_IFACE, in_signature="sd", out_signature="")
    def SetLoss(self, address, fraction):
        """Lose this fraction (0-1) of notifications over the air (seq still counts)."""
        dev = self._device(address)
        if not 0.0 <= fraction <= 1.0:
            raise sim_error("InvalidArguments", "fraction must be 0-1")
        dev.loss = float(fraction)
        for chrc in dev.characteristics():
            chrc.loss = dev.loss

    @dbus.service.method(SIM_IFACE, in_signature="sb", out_signature="")
    def SetReachable(self, address, reachable):
        """Out of range: the link drops and Connect fails after a timeout."""
        dev = self._device(address)
        dev.reachable = bool(reachable)
        if not reachable:
            dev.link_down("org.bluez.Reason.Timeout", "Connection timeout")

    @dbus.service.method(SIM_IFACE, in_signature="s", out_signature="")
    def DropLink(self, address):
        """Link loss (supervision timeout): Connected false and GATT objects removed."""
        dev = self._device(address)
        if dev.state == "disconnected":
            raise sim_error("NotConnected", "%s is not connected" % address)
        dev.link_down("org.bluez.Reason.Timeout", "Connection timeout")

    @dbus.service.method(SIM_IFACE, in_signature="", out_signature="")
    def Pause(self):
        """Freeze the scenario clock: posture holds, no scripted cracks."""
        self.sim.clock.pause()
        log.info("scenario paused at %.1f s", self.sim.clock.now())

    @dbus.service.method(SIM_IFACE, in_signature="", out_signature="")
    def Resume(self):
        """Run the scenario clock again and release every SetAngle hold."""
        self.sim.clock.resume()
        for dev in self.sim.devices.values():
            dev.angle_override = None
        log.info("scenario resumed at %.1f s", self.sim.clock.now())

    @dbus.service.method(SIM_IFACE, in_signature="", out_signature="a{sv}")
    def GetStatus(self):
        clock = self.sim.clock
        return dbus.Dictionary({
            "Scenario": dbus.String(self.sim.args.scenario),
            "Seed": dbus.Int64(self.sim.args.seed),
            "Speed": dbus.Double(self.sim.args.speed),
            "Rate": dbus.Double(self.sim.args.rate),
            "Started": dbus.Boolean(clock.started),
            "Paused": dbus.Boolean(clock.paused),
            "Time": dbus.Double(clock.now()),
        }, signature="sv")


# --------------------------------------------------------------------------- simulator

class Clock:
    """Scenario time in seconds: starts at the first StartNotify, runs `speed` times real
    time, stands still while paused."""

    def __init__(self, speed):
        self.speed = speed
        self.started = False
        self.paused = False
        self.base_t = 0.0
        self.base_real = 0.0

    def start(self):
        if not self.started:
            self.started = True
            self.base_real = time.monotonic()
            log.info("scenario clock started")

    def now(self):
        if not self.started or self.paused:
            return self.base_t
        return self.base_t + (time.monotonic() - self.base_real) * self.speed

    def pause(self):
        self.base_t = self.now()
        self.paused = True

    def resume(self):
        if self.paused:
            self.paused = False
            self.base_real = time.monotonic()


class Simulator:
    def __init__(self, bus, args):
        self.bus = bus
        self.args = args
        self.objects = {}
        self.watched = set()
        self.clock = Clock(args.speed)
        self.crack_t = 0.0
        self.om = ObjectManager(self)
        self.root = BluezRoot(self)
        self.adapter = Adapter(self)
        self.control = SimControl(self)
        self.export(self.root)
        self.export(self.adapter)
        lag = 20.0 if args.scenario == "desk-day" else 0.0
        wearer = S.Track(args.scenario, args.seed, "wearer")
        other = S.Track(args.scenario, args.seed, "microbit", lag=lag)
        self.devices = {}
        for spec in DEVICE_SPECS:
            if spec.kind == "microbit":
                dev = Device(self, spec, other, S.MICROBIT_MOUNT)
            else:
                dev = Device(self, spec, wearer, S.CLIP_MOUNT)
            self.devices[spec.address] = dev
            dev.export()
        bus.add_signal_receiver(self._name_owner_changed, signal_name="NameOwnerChanged",
                                dbus_interface="org.freedesktop.DBus",
                                bus_name="org.freedesktop.DBus", path="/org/freedesktop/DBus")
        self.tick_ms = max(5, min(50, int(1000 / args.rate)))
        self.last_rssi = time.monotonic()
        GLib.timeout_add(self.tick_ms, self.tick)

    def export(self, obj):
        if not obj.on_bus:
            obj.add_to_connection(self.bus, obj.path)
            obj.on_bus = True
        self.objects[obj.path] = obj
        self.om.InterfacesAdded(dbus.ObjectPath(obj.path), obj.interfaces())

    def unexport(self, obj):
        if self.objects.pop(obj.path, None) is None:
            return
        self.om.InterfacesRemoved(dbus.ObjectPath(obj.path),
                                  dbus.Array(list(obj.props), signature="s"))
        obj.remove_from_connection()
        obj.on_bus = False

    # -- clients coming and going
    def watch_sender(self, sender):
        """Make sure we hear when `sender` leaves the bus (it may already have)."""
        if sender in self.watched:
            return
        self.watched.add(sender)

        def has_owner(owned):
            if not owned:
                self._forget(sender)

        self.bus.call_async("org.freedesktop.DBus", "/org/freedesktop/DBus",
                            "org.freedesktop.DBus", "NameHasOwner", "s", (sender,),
                            has_owner, lambda e: None)

    def _name_owner_changed(self, name, old, new):
        if name.startswith(":") and not new:
            self._forget(name)

    def _forget(self, sender):
        self.watched.discard(sender)
        self.root.forget_sender(sender)
        self.adapter.forget_sender(sender)
        for dev in self.devices.values():
            for chrc in dev.characteristics():
                chrc.forget_sender(sender)

    # -- time
    def tick(self):
        try:
            now = time.monotonic()
            t = self.clock.now()
            for dev in self.devices.values():
                if dev.state == "connected":
                    dev.tick(t, now, self.args.rate, self.args.speed)
            if t > self.crack_t:
                self._scripted_cracks(self.crack_t, t)
                self.crack_t = t
            self._discovery(now)
        except Exception:       # a bug must not stop the simulated radio
            log.exception("tick failed")
        return True

    def _scripted_cracks(self, t0, t1):
        for dev in self.devices.values():
            if dev.kind != "mic" or dev.state != "connected":
                continue
            for c in dev.track.cracks_due(t0, t1):
                age = (t1 - c.onset) * 1000.0 / self.args.speed
                dev.send_crack(c.kind, c.intensity, c.duration_ms, c.count, age)

    def _discovery(self, now):
        if not self.adapter.discovering:
            return
        for dev in self.devices.values():
            if not dev.exported and dev.removed_at is not None \
                    and now - dev.removed_at >= REAPPEAR_MS / 1000.0:
                log.info("%s: found again by discovery", dev.address)
                dev.export()
        if now - self.last_rssi >= 2.0:
            self.last_rssi = now
            for dev in self.devices.values():
                if dev.exported and not dev.connected:
                    dev._dev("RSSI", dbus.Int16(dev.spec.rssi + dev.rng.randint(-4, 4)))


# -------------------------------------------------------------------------------- main

def parse_args(argv):
    ap = argparse.ArgumentParser(description="Simulated BlueZ with spinewatch sensors.")
    ap.add_argument("--bus", help="D-Bus address (default: $DBUS_SYSTEM_BUS_ADDRESS)")
    ap.add_argument("--scenario", default="desk-day", choices=S.SCENARIOS)
    ap.add_argument("--speed", type=float, default=1.0, help="scenario time factor")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--duration", type=float, default=0.0,
                    help="exit after this many real seconds (0: run until stopped)")
    ap.add_argument("--rate", type=float, default=20.0, help="posture samples per second")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    if args.speed <= 0 or args.rate <= 0 or args.rate > 1000:
        ap.error("--speed must be > 0 and --rate in (0, 1000]")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="fake-bluez: %(message)s", stream=sys.stderr)
    address = args.bus or os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
    if not address:
        log.error("no bus: pass --bus ADDRESS or set DBUS_SYSTEM_BUS_ADDRESS")
        return 2
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    try:
        bus = dbus.bus.BusConnection(address)
    except dbus.DBusException as e:
        log.error("cannot connect to %s: %s", address, e.get_dbus_message())
        return 1
    bus.set_exit_on_disconnect(False)
    loop = GLib.MainLoop()

    Simulator(bus, args)       # objects first, so org.bluez never appears empty
    if bus.request_name(BLUEZ, dbus.bus.NAME_FLAG_DO_NOT_QUEUE) != \
            dbus.bus.REQUEST_NAME_REPLY_PRIMARY_OWNER:
        log.error("org.bluez is already owned on %s", address)
        return 1
    log.info("owning org.bluez as %s on %s (scenario %s, seed %d, speed %g)",
             bus.get_unique_name(), address, args.scenario, args.seed, args.speed)

    status = {"code": 0}

    def stop(code):
        status["code"] = code
        loop.quit()
        return False

    def lost_bus(_conn):
        log.info("bus connection closed")
        stop(0)

    bus.call_on_disconnection(lost_bus)
    for sig in (signal.SIGINT, signal.SIGTERM):
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, sig, stop, 0)
    if args.duration > 0:
        GLib.timeout_add(int(args.duration * 1000), stop, 0)
    loop.run()
    return status["code"]


if __name__ == "__main__":
    sys.exit(main())
