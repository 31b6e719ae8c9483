#!/usr/bin/python3
# tests/sim/fake_bluez.py - a simulated bluetoothd for spinewatch's demo and tests.
#
# Owns `org.bluez` on a private bus and exports what BlueZ 5.66's D-Bus API would show for
# one adapter with LE wearables: the ObjectManager at /, Properties on every object,
# org.bluez.AgentManager1 (/org/bluez), org.bluez.Adapter1 (hci0), org.bluez.Device1 and
# org.bluez.Battery1 per sensor and, while a sensor is connected, its GattService1 /
# GattCharacteristic1 / GattDescriptor1 objects. Notifications go out as
# PropertiesChanged(Value) signals to StartNotify sessions (counted per D-Bus sender as BlueZ
# does) or as one SOCK_SEQPACKET packet per notification on an AcquireNotify file
# descriptor. Pairing calls the registered org.bluez.Agent1. Sample data comes from
# scenario.py, encoded by payloads.py. A test control interface, io.spinewatch.Sim1 at
# /io/spinewatch/sim, injects cracks and garbage, holds angles, drops links, removes the
# adapter, and records the BlueZ calls clients made. See tests/sim/README.md.

import argparse
import collections
import logging
import os
import random
import signal
import socket
import struct
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
AGENT_IFACE = "org.bluez.Agent1"
PROFILE_MANAGER_IFACE = "org.bluez.ProfileManager1"
ADAPTER_IFACE = "org.bluez.Adapter1"
DEVICE_IFACE = "org.bluez.Device1"
BATTERY_IFACE = "org.bluez.Battery1"
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
ATT_MS = 15               # one ATT request/response (read, write, CCCD write)
REAPPEAR_MS = 1000        # a removed device is seen again this long after, while discovering
FOUND_MS = 300            # with --require-discovery: first advertisement seen after StartDiscovery
FOUND_STAGGER_MS = 40     # ... and each further device this much later
RSSI_PERIOD_S = 2.0       # RSSI updates of advertising devices while discovering
PAIR_MS = 200             # SMP after the agent said yes
AGENT_TIMEOUT_S = 30.0    # how long the simulator waits for an agent's answer
MICROBIT_MAX_HZ = 100.0   # what the link delivers at most, whatever the accelerometer period
CALL_LOG_MAX = 20000

PAIR_CAPABILITIES = ("", "DisplayOnly", "DisplayYesNo", "KeyboardOnly", "NoInputNoOutput",
                     "KeyboardDisplay")
ACQUIRE_ERRORS = ("NotSupported", "NotPermitted", "InProgress", "Failed", "UnknownMethod")


# ---------------------------------------------------------------------------- errors

def bluez_error(name, message):
    return dbus.DBusException(message, name="org.bluez.Error." + name)


def sim_error(name, message):
    return dbus.DBusException(message, name=SIM_IFACE + ".Error." + name)


def dbus_error(name, message):
    return dbus.DBusException(message, name="org.freedesktop.DBus.Error." + name)


def not_authorized():
    return bluez_error("NotAuthorized", "Operation Not Authorized")


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
        if not self.on_bus:
            return
        if always or old is None or old != value or signature_of(old) != signature_of(value):
            self.PropertiesChanged(iface, dbus.Dictionary({name: value}, signature="sv"),
                                   dbus.Array([], signature="s"))

    def drop_prop(self, iface, name):
        """Remove a property (as BlueZ does when it no longer exists, e.g. RSSI): emitted
        as invalidated."""
        if self.props.get(iface, {}).pop(name, None) is not None and self.on_bus:
            self.PropertiesChanged(iface, dbus.Dictionary({}, signature="sv"),
                                   dbus.Array([name], signature="s"))

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

    @dbus.service.method(PROPS_IFACE, in_signature="ssv", out_signature="",
                         sender_keyword="sender")
    def Set(self, iface, name, value, sender=None):
        self.sim.record(sender, self.path, "Properties.Set", iface, name, value)
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
    """/org/bluez: AgentManager1 (agents are used by Device1.Pair) and ProfileManager1."""

    def __init__(self, sim):
        super().__init__(sim, "/org/bluez")
        self.props = {AGENT_MANAGER_IFACE: {}, PROFILE_MANAGER_IFACE: {}}
        self.agents = {}               # sender -> (agent path, capability)
        self.default_agent = None      # sender

    @dbus.service.method(AGENT_MANAGER_IFACE, in_signature="os", out_signature="",
                         sender_keyword="sender")
    def RegisterAgent(self, agent, capability, sender=None):
        self.sim.record(sender, self.path, "AgentManager1.RegisterAgent", agent, capability)
        if capability not in PAIR_CAPABILITIES:
            raise bluez_error("InvalidArguments", "Invalid arguments in method call")
        if sender in self.agents:
            raise bluez_error("AlreadyExists", "Already Exists")
        self.agents[sender] = (str(agent), str(capability) or "KeyboardDisplay")
        self.sim.watch_sender(sender)
        log.info("agent %s registered by %s (%s)", agent, sender, capability or "default")

    @dbus.service.method(AGENT_MANAGER_IFACE, in_signature="o", out_signature="",
                         sender_keyword="sender")
    def UnregisterAgent(self, agent, sender=None):
        self.sim.record(sender, self.path, "AgentManager1.UnregisterAgent", agent)
        if sender not in self.agents or self.agents[sender][0] != agent:
            raise bluez_error("DoesNotExist", "Does Not Exist")
        self.forget_sender(sender)

    @dbus.service.method(AGENT_MANAGER_IFACE, in_signature="o", out_signature="",
                         sender_keyword="sender")
    def RequestDefaultAgent(self, agent, sender=None):
        self.sim.record(sender, self.path, "AgentManager1.RequestDefaultAgent", agent)
        if sender not in self.agents or self.agents[sender][0] != agent:
            raise bluez_error("DoesNotExist", "Does Not Exist")
        self.default_agent = sender

    def agent_for(self, sender):
        """(owner, path, capability) of the agent for a request from `sender`: its own,
        else the default agent, else None (as BlueZ's agent_get)."""
        if sender in self.agents:
            return (sender,) + self.agents[sender]
        if self.default_agent in self.agents:
            return (self.default_agent,) + self.agents[self.default_agent]
        return None

    def forget_sender(self, sender):
        self.agents.pop(sender, None)
        if self.default_agent == sender:
            self.default_agent = None


# ------------------------------------------------------------------------------ adapter

_FILTER_SIGS = {"UUIDs": "as", "RSSI": "n", "Pathloss": "q", "Transport": "s",
                "DuplicateData": "b", "Discoverable": "b", "Pattern": "s"}


class Adapter(PropertyObject):
    def __init__(self, sim):
        super().__init__(sim, ADAPTER_PATH)
        self.sessions = set()          # senders that called StartDiscovery
        self.filters = {}              # sender -> discovery filter
        self.discovery_started = None  # monotonic time Discovering became true
        self.setters[(ADAPTER_IFACE, "Powered")] = ("b", self._set_powered)
        self.setters[(ADAPTER_IFACE, "Alias")] = ("s", self._set_alias)
        self.setters[(ADAPTER_IFACE, "Discoverable")] = ("b", self._set_flag("Discoverable"))
        self.setters[(ADAPTER_IFACE, "Pairable")] = ("b", self._set_flag("Pairable"))
        self.reset()

    def reset(self):
        """Properties as after the controller was (re)plugged."""
        self.sessions.clear()
        self.filters.clear()
        self.discovery_started = None
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
            "UUIDs": dbus.Array([P.GAP_SERVICE_UUID, P.GATT_SERVICE_UUID,
                                 P.DEVICE_INFO_SERVICE_UUID], signature="s"),
            "Modalias": dbus.String("usb:v1D6Bp0246d0542"),
            "Roles": dbus.Array(["central", "peripheral"], signature="s"),
        }

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
            self._update_discovering()
        else:
            log.info("adapter powered on")
        self.set_prop(ADAPTER_IFACE, "Powered", dbus.Boolean(value))

    def _update_discovering(self):
        on = bool(self.sessions)
        if on == self.discovering:
            return
        self.discovery_started = time.monotonic() if on else None
        self.set_prop(ADAPTER_IFACE, "Discovering", dbus.Boolean(on))
        if not on:
            self.sim.discovery_stopped()

    @dbus.service.method(ADAPTER_IFACE, in_signature="", out_signature="", sender_keyword="sender")
    def StartDiscovery(self, sender=None):
        self.sim.record(sender, self.path, "Adapter1.StartDiscovery")
        if not self.powered:
            raise bluez_error("NotReady", "Resource Not Ready")
        if sender in self.sessions:
            raise bluez_error("InProgress", "Operation already in progress")
        self.sessions.add(sender)
        self.sim.watch_sender(sender)
        self._update_discovering()

    @dbus.service.method(ADAPTER_IFACE, in_signature="", out_signature="", sender_keyword="sender")
    def StopDiscovery(self, sender=None):
        self.sim.record(sender, self.path, "Adapter1.StopDiscovery")
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
        self.sim.record(sender, self.path, "Adapter1.SetDiscoveryFilter", properties)
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

    @dbus.service.method(ADAPTER_IFACE, in_signature="o", out_signature="", sender_keyword="sender")
    def RemoveDevice(self, path, sender=None):
        self.sim.record(sender, self.path, "Adapter1.RemoveDevice", path)
        dev = next((d for d in self.sim.devices.values() if d.path == path), None)
        if dev is None or not dev.exported:
            raise bluez_error("DoesNotExist", "Does Not Exist")
        dev.remove()

    def matches_filters(self, dev):
        """Would the merged discovery filter let this device's advertisements through?
        BlueZ merges the clients' filters: a UUID list restricts only if every client's
        filter has one."""
        filters = [self.filters.get(s, {}) for s in self.sessions]
        if filters and all(str(f.get("Transport", "auto")) == "bredr" for f in filters):
            return False                     # our sensors are LE only
        uuid_sets = [f.get("UUIDs") for f in filters]
        if not uuid_sets or any(u is None or len(u) == 0 for u in uuid_sets):
            return True
        wanted = {str(u).lower() for us in uuid_sets for u in us}
        return bool(wanted & {u.lower() for u in dev.spec.uuids})

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
    """A remote characteristic. `role` says what feeds it: 'posture', 'crack', 'microbit',
    'thingy-gravity' (notified samples), 'microbit-period', 'thingy-config' (device
    settings) or None (a static value)."""

    def __init__(self, device, service, handle, uuid, flags, role=None, value=b""):
        super().__init__(device.sim, "%s/char%04x" % (service.path, handle))
        self.device = device
        self.role = role
        self.flags = list(flags)
        self.static_value = bytes(value)
        self.subscribers = {}          # sender -> "pending" | "active" (StartNotify sessions)
        self.acquired = None           # (sender, our socket, GLib watch id) of AcquireNotify
        self.acquire_pending = None    # sender while the CCCD write of AcquireNotify runs
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
        if "notify" in self.flags:
            props["NotifyAcquired"] = dbus.Boolean(False)
        self.props[CHRC_IFACE] = props
        self.descriptors = []

    @property
    def can_notify(self):
        return "notify" in self.flags or "indicate" in self.flags

    @property
    def notifying(self):
        return self.acquired is not None or \
            any(state == "active" for state in self.subscribers.values())

    @property
    def notify_path(self):
        if self.acquired is not None:
            return "acquire"
        return "start" if self.notifying else None

    def _update_notifying(self):
        if self.can_notify:
            self.set_prop(CHRC_IFACE, "Notifying", dbus.Boolean(self.notifying))
        if "notify" in self.flags:
            self.set_prop(CHRC_IFACE, "NotifyAcquired", dbus.Boolean(self.acquired is not None))

    def _store_value(self, data, always):
        self.set_prop(CHRC_IFACE, "Value", byte_array(data), always=always)

    def _check_access(self):
        if self.device.needs_pairing():
            raise not_authorized()

    def notify(self, data):
        """Send one notification: one packet on the AcquireNotify socket, else
        PropertiesChanged(Value) from this object. Returns whether it went out."""
        if self.acquired is not None:
            sock = self.acquired[1]
            try:
                sock.send(bytes(data), socket.MSG_DONTWAIT)
            except BlockingIOError:
                self.device.counters["fd_full"] += 1      # reader too slow: BlueZ drops it
                return False
            except OSError:
                self.release_acquired("write failed")
                return False
            return True
        self._store_value(data, always=True)
        return True

    @dbus.service.method(CHRC_IFACE, in_signature="a{sv}", out_signature="ay",
                         sender_keyword="sender", async_callbacks=("reply", "error"))
    def ReadValue(self, options, sender=None, reply=None, error=None):
        self.sim.record(sender, self.path, "GattCharacteristic1.ReadValue", options)
        if "read" not in self.flags:
            raise bluez_error("NotPermitted", "Read not permitted")
        self._check_access()
        offset = int(options.get("offset", 0))
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

    @dbus.service.method(CHRC_IFACE, in_signature="aya{sv}", out_signature="",
                         sender_keyword="sender", async_callbacks=("reply", "error"))
    def WriteValue(self, value, options, sender=None, reply=None, error=None):
        self.sim.record(sender, self.path, "GattCharacteristic1.WriteValue", value, options)
        if "write" not in self.flags and "write-without-response" not in self.flags:
            raise bluez_error("NotPermitted", "Write not permitted")
        self._check_access()
        data = bytes(value)
        if int(options.get("offset", 0)) != 0:
            raise bluez_error("InvalidOffset", "Invalid offset")

        def done():
            if not self.device.gatt_exported(self):
                error(bluez_error("Failed", "Not connected"))
                return False
            err = self.device.write_value(self, data)
            if err is not None:
                error(err)
            else:
                self._store_value(self.device.read_value(self), always=False)
                reply()
            return False
        GLib.timeout_add(ATT_MS, done)

    @dbus.service.method(CHRC_IFACE, in_signature="a{sv}", out_signature="hq",
                         sender_keyword="sender", async_callbacks=("reply", "error"))
    def AcquireNotify(self, options, sender=None, reply=None, error=None):
        """As BlueZ 5.66: Failed when not connected, NotPermitted ("Notify acquired") while
        acquired, InProgress while any StartNotify session exists, NotSupported without
        the notify flag (indicate-only included). Returns a SOCK_SEQPACKET socket and the
        ATT MTU; each notification is one packet. Closing it ends the session."""
        self.sim.record(sender, self.path, "GattCharacteristic1.AcquireNotify", options)
        refuse = self.device.acquire_error(self.role)
        if refuse == "UnknownMethod":
            raise dbus_error("UnknownMethod", 'Method "AcquireNotify" with signature "a{sv}" '
                             'on interface "%s" doesn\'t exist' % CHRC_IFACE)
        if refuse:
            raise bluez_error(refuse, "AcquireNotify refused by the simulator (%s)" % refuse)
        if not self.device.gatt_exported(self) or self.device.state == "disconnecting":
            raise bluez_error("Failed", "Not connected")
        if self.acquired is not None or self.acquire_pending is not None:
            raise bluez_error("NotPermitted", "Notify acquired")
        if self.subscribers:
            raise bluez_error("InProgress", "In Progress")
        if "notify" not in self.flags:
            raise bluez_error("NotSupported", "Operation is not supported")
        self.acquire_pending = sender
        self.sim.watch_sender(sender)

        def cccd_written():
            if self.acquire_pending != sender or not self.device.gatt_exported(self):
                self.acquire_pending = None
                error(bluez_error("Failed", "Characteristic not available"))
                return False
            self.acquire_pending = None
            if self.device.needs_pairing():   # the CCCD write needs an encrypted link
                error(not_authorized())
                return False
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            ours.setblocking(False)
            watch = GLib.io_add_watch(ours.fileno(), GLib.PRIORITY_DEFAULT,
                                      GLib.IO_IN | GLib.IO_HUP | GLib.IO_ERR, self._on_fd)
            first = not self.notifying
            self.acquired = (sender, ours, watch)
            if first:
                self.device.notify_started(self)
            self._update_notifying()
            reply(dbus.types.UnixFd(theirs.fileno()), dbus.UInt16(self.props[CHRC_IFACE]["MTU"]))
            theirs.close()
            self.sim.clock.start()
            log.debug("%s: %s acquired %s", self.device.address, sender, self.role)
            return False
        GLib.timeout_add(ATT_MS, cccd_written)

    def _on_fd(self, fd, condition):
        if condition & (GLib.IO_HUP | GLib.IO_ERR):
            self.release_acquired("closed by the client")
            return False
        try:                                  # a client writing to it: read and discard
            data = self.acquired[1].recv(512) if self.acquired else b""
        except OSError:
            data = b""
        if not data:
            self.release_acquired("closed by the client")
            return False
        return True

    def release_acquired(self, why):
        """End the AcquireNotify session: close our end of the socket."""
        if self.acquired is None:
            return
        sender, sock, watch = self.acquired
        self.acquired = None
        if GLib.MainContext.default().find_source_by_id(watch) is not None:
            GLib.source_remove(watch)
        sock.close()
        log.debug("%s: notify fd of %s for %s released (%s)", self.device.address, sender,
                  self.role, why)
        if self.on_bus:
            self._update_notifying()

    @dbus.service.method(CHRC_IFACE, in_signature="", out_signature="",
                         sender_keyword="sender", async_callbacks=("reply", "error"))
    def StartNotify(self, sender=None, reply=None, error=None):
        self.sim.record(sender, self.path, "GattCharacteristic1.StartNotify")
        if self.device.state == "disconnecting":
            raise bluez_error("NotConnected", "Not Connected")
        if self.acquired is not None or self.acquire_pending is not None:
            raise bluez_error("NotPermitted", "Notify acquired")
        if not self.can_notify:
            raise bluez_error("NotSupported", "Operation is not supported")
        state = self.subscribers.get(sender)
        if state == "active":
            reply()                   # BlueZ >= 5.6x: a second StartNotify is a no-op
            return
        if state == "pending":
            raise bluez_error("InProgress", "In Progress")
        self._check_access()
        self.subscribers[sender] = "pending"
        self.sim.watch_sender(sender)

        def cccd_written():
            if self.subscribers.get(sender) != "pending" or not self.device.gatt_exported(self):
                self.subscribers.pop(sender, None)
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
        self.sim.record(sender, self.path, "GattCharacteristic1.StopNotify")
        if self.acquired is not None and self.acquired[0] == sender:
            self.release_acquired("StopNotify")
            return
        if sender not in self.subscribers:
            raise bluez_error("Failed", "No notify session started")
        del self.subscribers[sender]
        self._update_notifying()

    def forget_sender(self, sender):
        if self.acquired is not None and self.acquired[0] == sender:
            self.release_acquired("client left the bus")
        if self.acquire_pending == sender:
            self.acquire_pending = None
        if self.subscribers.pop(sender, None) is not None:
            log.debug("%s: %s left, unsubscribed from %s", self.device.address, sender, self.role)
            self._update_notifying()

    def drop_sessions(self):
        """The link is gone: every notify session ends, the socket is closed."""
        self.release_acquired("link down")
        self.acquire_pending = None
        self.subscribers.clear()


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
        on = 2 if "notify" not in self.chrc.flags else 1
        data = bytes([on, 0]) if self.chrc.notifying else b"\x00\x00"
        self.set_prop(DESC_IFACE, "Value", byte_array(data))
        return byte_array(data)

    @dbus.service.method(DESC_IFACE, in_signature="aya{sv}", out_signature="")
    def WriteValue(self, value, options):
        # BlueZ owns the CCCD: clients use StartNotify/StopNotify/AcquireNotify.
        raise bluez_error("NotPermitted", "Write not permitted")


# ------------------------------------------------------------------------------ devices

class DeviceSpec:
    def __init__(self, address, name, kind, uuids, rssi, appearance=None, battery=None,
                 track="wearer", mount=None):
        self.address, self.name, self.kind = address, name, kind
        self.uuids, self.rssi, self.appearance = uuids, rssi, appearance
        self.battery, self.track, self.mount = battery, track, mount


DEVICE_SPECS = [
    DeviceSpec("C0:FF:EE:00:00:01", "Spine Clip", "clip", [P.SPINE_SERVICE_UUID], -58, 0x0540,
               battery=87, track="wearer", mount=S.CLIP_MOUNT),
    DeviceSpec("C0:FF:EE:00:00:02", "Spine Mic", "mic", [P.SPINE_SERVICE_UUID], -64, 0x0540,
               battery=64, track="wearer", mount=S.CLIP_MOUNT),
    # a real micro:bit advertises its name only; its services show up after connecting
    DeviceSpec("C0:FF:EE:00:00:03", "BBC micro:bit [zotiv]", "microbit", [], -71,
               track="microbit", mount=S.MICROBIT_MOUNT),
    DeviceSpec("C0:FF:EE:00:00:04", "Thingy", "thingy", [P.THINGY_CONFIG_SERVICE_UUID], -67,
               battery=92, track="thingy", mount=S.THINGY_MOUNT),
]
MICROBIT_ADDRESS = "C0:FF:EE:00:00:03"
# --thingy-sound: a Thingy:52 worn as a sound sensor, streaming its microphone (ADPCM) for
# the host to hear the wearer's cracks in
THINGY_SOUND_SPEC = DeviceSpec("C0:FF:EE:00:00:05", "Thingy Sound", "thingy-sound",
                               [P.THINGY_CONFIG_SERVICE_UUID], -69, battery=81, track="wearer",
                               mount=S.THINGY_MOUNT)
MIC_NOISE = 40.0         # the microphone's background, RMS in int16 units (about -58 dBFS)


def extra_clip_specs(n):
    """--extra-clips N: more Spine Clip-like posture sensors, C0:FF:EE:00:01:01 and up."""
    out = []
    for i in range(1, n + 1):
        out.append(DeviceSpec("C0:FF:EE:00:01:%02X" % i, "Spine Clip %d" % (i + 1), "clip",
                              [P.SPINE_SERVICE_UUID], -55 - (i * 3) % 30, 0x0540,
                              battery=max(5, 95 - 7 * i % 80), track="clip-%d" % i,
                              mount=S.CLIP_MOUNT))
    return out


# Garbage a sensor can interleave between valid notifications (SetGarbage), per role.
GARBAGE_KINDS = {
    "posture": ("short", "version", "backwards"),
    "crack": ("short", "version", "kind", "intensity", "count", "backwards"),
    "microbit": ("short", "long"),
    "thingy-gravity": ("short", "nan", "inf", "huge"),
    "thingy-mic": ("short", "index"),
}


class Device(PropertyObject):
    """A remote LE sensor. state: disconnected, connecting, resolving, connected,
    disconnecting."""

    def __init__(self, sim, spec, track):
        super().__init__(sim, address_to_path(spec.address))
        self.on_bus = False
        self.remove_from_connection()
        self.spec = spec
        self.address = spec.address
        self.kind = spec.kind
        self.track = track
        self.mount = spec.mount
        self.state = "disconnected"
        self.exported = False
        self.reachable = True
        self.removed_at = None
        self.connect_waiters = []       # [(ok(), fail(exc))]
        self.pending_pair = None        # {"reply", "error", "agent"}
        self.connect_timer = 0
        self.services = []
        self.angle_override = None
        self.loss = 0.0
        self.pair_required = spec.address in sim.pair_required
        self.acquire_errors = {}        # role or "" -> BlueZ error name
        self.indicate_only = False
        self.garbage = 0.0
        self.garbage_kinds = None       # None: all of the role's kinds, in turn
        self.garbage_turn = 0
        self.battery = spec.battery
        self.microbit_period = P.MICROBIT_DEFAULT_PERIOD
        self.thingy_config = P.THINGY_DEFAULT_CONFIG
        # the sound configuration: speaker mode, microphone mode; the microphone starts in
        # SPL mode and streams frames only once a host asks for ADPCM
        self.sound_config = (1, P.THINGY_MIC_MODE_SPL)
        self.mic_state = (0, 0)         # ADPCM encoder: predictor, step index
        self.mic_sounds = []            # [samples, position] of cracks being played
        self.mic_lp = 0.0
        self.counters = collections.Counter()
        self.rng = random.Random("%s/%s/noise" % (sim.args.seed, spec.address))
        self.stream = {}                # chrc -> [real start, samples sent, rate]
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
            "Connected": dbus.Boolean(False),
            "UUIDs": dbus.Array(spec.uuids, signature="s"),
            "Adapter": dbus.ObjectPath(ADAPTER_PATH),
            "ServicesResolved": dbus.Boolean(False),
            "WakeAllowed": dbus.Boolean(False),
        }
        if not sim.args.require_discovery:
            props["RSSI"] = dbus.Int16(spec.rssi)   # seen by a scan before we started
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

    @property
    def paired(self):
        return bool(self.props[DEVICE_IFACE]["Paired"])

    def needs_pairing(self):
        return self.pair_required and not self.paired

    def acquire_error(self, role):
        return self.acquire_errors.get(role) or self.acquire_errors.get("")

    # -- connection
    def _start_connect(self, ok, fail):
        """Bring the link up (or join the attempt under way); ok() or fail(exc) later."""
        if self.state == "connected":
            ok()
            return
        self.connect_waiters.append((ok, fail))
        if self.state in ("connecting", "resolving"):
            return
        self.state = "connecting"
        log.info("%s: connecting", self.address)
        delay = CONNECT_MS if self.reachable else CONNECT_TIMEOUT_MS
        self.connect_timer = GLib.timeout_add(delay, self._link_up)

    @dbus.service.method(DEVICE_IFACE, in_signature="", out_signature="",
                         sender_keyword="sender", async_callbacks=("reply", "error"))
    def Connect(self, sender=None, reply=None, error=None):
        self.sim.record(sender, self.path, "Device1.Connect")
        if not self.sim.adapter.powered:
            raise bluez_error("NotReady", "Resource Not Ready")
        if self.props[DEVICE_IFACE]["Blocked"]:
            raise bluez_error("Failed", "Device is blocked")
        if self.state == "connected":
            reply()
            return
        if self.state in ("connecting", "resolving", "disconnecting"):
            raise bluez_error("InProgress", "In Progress")
        self._start_connect(reply, error)

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
        uuids = [str(u) for u in self.props[DEVICE_IFACE]["UUIDs"]]
        for u in [P.GAP_SERVICE_UUID, P.GATT_SERVICE_UUID] + \
                [str(s.props[SERVICE_IFACE]["UUID"]) for s in self.services] + \
                ([P.BATTERY_SERVICE_UUID] if self.battery is not None else []):
            if u not in uuids:
                uuids.append(u)
        self._dev("UUIDs", dbus.Array(sorted(uuids), signature="s"))
        self._dev("ServicesResolved", dbus.Boolean(True))
        if self.battery is not None:     # BlueZ's battery plugin claims the Battery Service
            self.props[BATTERY_IFACE] = {"Percentage": dbus.Byte(self.battery)}
            self.sim.om.InterfacesAdded(dbus.ObjectPath(self.path), dbus.Dictionary(
                {BATTERY_IFACE: dbus.Dictionary(self.props[BATTERY_IFACE], signature="sv")},
                signature="sa{sv}"))
        log.info("%s: connected, services resolved", self.address)
        self._finish_connect(None)
        return False

    def _finish_connect(self, err):
        waiters, self.connect_waiters = self.connect_waiters, []
        for ok, fail in waiters:
            if err is None:
                ok()
            else:
                fail(err)

    @dbus.service.method(DEVICE_IFACE, in_signature="", out_signature="", sender_keyword="sender")
    def Disconnect(self, sender=None):
        self.sim.record(sender, self.path, "Device1.Disconnect")
        if self.state == "disconnected":
            raise bluez_error("NotConnected", "Not Connected")
        self.link_down("org.bluez.Reason.Local", "Disconnected by local host")

    def link_down(self, reason, message, quiet=False):
        """The link is gone (Disconnect, link loss, adapter off): as BlueZ does for an
        LE device, ServicesResolved and Connected go false, Battery1 and every GATT
        object are removed, notify sockets closed. A pending Connect or Pair fails.
        `quiet`: the adapter vanished, no property signals (the objects go too)."""
        if self.connect_timer:
            GLib.source_remove(self.connect_timer)
            self.connect_timer = 0
        self._fail_pair(bluez_error("AuthenticationCanceled", "Authentication Canceled"))
        was = self.state
        if was == "disconnected":
            return
        self.state = "disconnecting"
        if was == "connecting":
            self.state = "disconnected"
            self._finish_connect(bluez_error("Failed", "le-connection-abort-by-local"))
            return
        log.info("%s: link down (%s)", self.address, message)
        self.counters["links_down"] += 1
        if quiet:
            self.props[DEVICE_IFACE]["ServicesResolved"] = dbus.Boolean(False)
            self.props[DEVICE_IFACE]["Connected"] = dbus.Boolean(False)
        else:
            self._dev("ServicesResolved", dbus.Boolean(False))
            self._dev("Connected", dbus.Boolean(False))
            if was in ("resolving", "connected"):
                self.Disconnected(reason, message)
        self._drop_gatt()
        if BATTERY_IFACE in self.props:
            del self.props[BATTERY_IFACE]
            if not quiet:
                self.sim.om.InterfacesRemoved(dbus.ObjectPath(self.path),
                                              dbus.Array([BATTERY_IFACE], signature="s"))
        self.state = "disconnected"
        self._finish_connect(bluez_error("Failed", "le-connection-abort-by-remote"))

    @dbus.service.signal(DEVICE_IFACE, signature="ss")
    def Disconnected(self, reason, message):
        pass

    # -- pairing
    @dbus.service.method(DEVICE_IFACE, in_signature="", out_signature="",
                         sender_keyword="sender", async_callbacks=("reply", "error"))
    def Pair(self, sender=None, reply=None, error=None):
        """Connect if needed, ask the caller's agent (or the default agent), then bond.
        NoInputNoOutput / DisplayOnly agents get RequestAuthorization (just works),
        DisplayYesNo / KeyboardDisplay get RequestConfirmation (numeric comparison),
        KeyboardOnly gets RequestPasskey. No agent: AuthenticationFailed."""
        self.sim.record(sender, self.path, "Device1.Pair")
        if not self.sim.adapter.powered:
            raise bluez_error("NotReady", "Resource Not Ready")
        if self.paired:
            raise bluez_error("AlreadyExists", "Already Exists")
        if self.pending_pair:
            raise bluez_error("InProgress", "In Progress")
        op = {"reply": reply, "error": error, "agent": None, "sender": sender}
        self.pending_pair = op
        log.info("%s: pairing requested by %s", self.address, sender)
        self._start_connect(lambda: self._ask_agent(op), lambda e: self._fail_pair(e, op))

    def _ask_agent(self, op):
        if self.pending_pair is not op:
            return
        agent = self.sim.root.agent_for(op["sender"])
        if agent is None:
            log.info("%s: no agent to pair with", self.address)
            self._fail_pair(bluez_error("AuthenticationFailed", "Authentication Failed"), op)
            return
        owner, path, capability = agent
        op["agent"] = (owner, path)
        dev = dbus.ObjectPath(self.path)
        if capability in ("DisplayYesNo", "KeyboardDisplay"):
            method, sig, args = "RequestConfirmation", "ou", (dev, dbus.UInt32(self.rng.randrange(1000000)))
        elif capability == "KeyboardOnly":
            method, sig, args = "RequestPasskey", "o", (dev,)
        else:
            method, sig, args = "RequestAuthorization", "o", (dev,)
        self.sim.record(owner, path, "Agent1." + method, *args)
        log.info("%s: asking agent %s %s: %s", self.address, owner, path, method)

        def agreed(*_result):
            self.sim.record(owner, path, "Agent1.%s:reply" % method)
            if self.pending_pair is not op:
                return
            GLib.timeout_add(PAIR_MS, self._paired, op)

        def refused(exc):
            name = exc.get_dbus_name() if isinstance(exc, dbus.DBusException) else str(exc)
            self.sim.record(owner, path, "Agent1.%s:error" % method, dbus.String(name or ""))
            log.info("%s: agent said %s", self.address, name)
            if name == "org.bluez.Error.Canceled":
                err = bluez_error("AuthenticationCanceled", "Authentication Canceled")
            else:
                err = bluez_error("AuthenticationFailed", "Authentication Failed")
            self._fail_pair(err, op)

        self.sim.bus.call_async(owner, path, AGENT_IFACE, method, sig, args, agreed, refused,
                                timeout=AGENT_TIMEOUT_S)

    def _paired(self, op):
        if self.pending_pair is not op:
            return False
        if not self.connected:
            self._fail_pair(bluez_error("AuthenticationFailed", "Authentication Failed"), op)
            return False
        self.pending_pair = None
        self._dev("Paired", dbus.Boolean(True))
        self._dev("Bonded", dbus.Boolean(True))
        self.counters["paired"] += 1
        log.info("%s: paired and bonded", self.address)
        op["reply"]()
        return False

    def _fail_pair(self, err, op=None):
        if self.pending_pair is None or (op is not None and self.pending_pair is not op):
            return
        op = self.pending_pair
        self.pending_pair = None
        op["error"](err)

    @dbus.service.method(DEVICE_IFACE, in_signature="", out_signature="", sender_keyword="sender")
    def CancelPairing(self, sender=None):
        self.sim.record(sender, self.path, "Device1.CancelPairing")
        if not self.pending_pair:
            raise bluez_error("DoesNotExist", "Does Not Exist")
        agent = self.pending_pair.get("agent")
        if agent:
            self.sim.bus.call_async(agent[0], agent[1], AGENT_IFACE, "Cancel", "", (),
                                    lambda *a: None, lambda e: None)
        self._fail_pair(bluez_error("AuthenticationCanceled", "Authentication Canceled"))

    def forget_bond(self):
        self._dev("Paired", dbus.Boolean(False))
        self._dev("Bonded", dbus.Boolean(False))

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

    def vanish(self):
        """The adapter went away: fail what is pending, drop the link without property
        signals, unexport (the bond is kept, as bluetoothd keeps it on disk)."""
        self.link_down("org.bluez.Reason.Local", "Adapter removed", quiet=True)
        if self.exported:
            self.sim.unexport(self)
        self.exported = False
        if "RSSI" in self.props[DEVICE_IFACE]:
            del self.props[DEVICE_IFACE]["RSSI"]

    def remove(self):
        """Adapter1.RemoveDevice: disconnect, forget pairing, unexport."""
        self.link_down("org.bluez.Reason.Local", "Device removed")
        self.sim.unexport(self)
        self.exported = False
        self.removed_at = time.monotonic()
        for name, value in (("Paired", False), ("Bonded", False), ("Trusted", False)):
            self.props[DEVICE_IFACE][name] = dbus.Boolean(value)
        self.props[DEVICE_IFACE]["Alias"] = dbus.String(self.spec.name)
        self.props[DEVICE_IFACE].pop("RSSI", None)
        log.info("%s: removed", self.address)

    # -- GATT database
    def _build_gatt(self):
        """Export the sensor's services as BlueZ does after discovery: paths from the
        attribute handles (GAP and GATT services at 0x0001-0x0009 are not exported; the
        Battery Service is claimed by BlueZ's battery plugin and shows as Battery1)."""
        handle = [0x000a]

        def service(uuid):
            svc = GattService(self, handle[0], uuid)
            handle[0] += 1
            self.services.append(svc)
            return svc

        def characteristic(svc, uuid, flags, role=None, value=b""):
            if role in GARBAGE_KINDS and self.indicate_only:
                flags = [f for f in flags if f != "notify"] + ["indicate"]
            chrc = GattCharacteristic(self, svc, handle[0], uuid, flags, role, value)
            handle[0] += 2
            if chrc.can_notify:
                chrc.descriptors.append(GattDescriptor(chrc, handle[0]))
                handle[0] += 1
            chrc.seq = self.rng.randrange(65536 - 48, 65536)   # wraps soon: tests the host
            chrc.loss = self.loss
            svc.characteristics.append(chrc)

        def align():
            handle[0] = (handle[0] + 0x0f) & ~0x0f

        if self.kind in ("clip", "mic"):
            svc = service(P.SPINE_SERVICE_UUID)
            if self.kind == "clip":
                characteristic(svc, P.POSTURE_UUID, ["read", "notify"], "posture")
            else:
                characteristic(svc, P.CRACK_UUID, ["notify"], "crack")
            align()
            dis = service(P.DEVICE_INFO_SERVICE_UUID)
            characteristic(dis, P.MANUFACTURER_NAME_UUID, ["read"], value=b"spinewatch")
            characteristic(dis, P.FIRMWARE_REVISION_UUID, ["read"], value=b"1.0.3")
        elif self.kind == "microbit":
            svc = service(P.MICROBIT_ACCEL_SERVICE_UUID)
            characteristic(svc, P.MICROBIT_ACCEL_DATA_UUID, ["read", "notify"], "microbit")
            characteristic(svc, P.MICROBIT_ACCEL_PERIOD_UUID, ["read", "write"],
                           "microbit-period")
        elif self.kind == "thingy-sound":   # Nordic Thingy:52 worn as a microphone
            cfg = service(P.THINGY_CONFIG_SERVICE_UUID)
            characteristic(cfg, P.THINGY_DEVICE_NAME_UUID, ["read", "write"],
                           value=b"Thingy Sound")
            characteristic(cfg, P.THINGY_FIRMWARE_UUID, ["read"], value=b"\x02\x01\x00")
            align()
            snd = service(P.THINGY_SOUND_SERVICE_UUID)
            characteristic(snd, P.THINGY_SOUND_CONFIG_UUID, ["read", "write"],
                           "thingy-sound-config")
            characteristic(snd, P.THINGY_SPEAKER_DATA_UUID, ["write-without-response"])
            characteristic(snd, P.THINGY_SPEAKER_STATUS_UUID, ["notify"])
            characteristic(snd, P.THINGY_MIC_UUID, ["notify"], "thingy-mic")
        else:                               # Nordic Thingy:52
            cfg = service(P.THINGY_CONFIG_SERVICE_UUID)
            characteristic(cfg, P.THINGY_DEVICE_NAME_UUID, ["read", "write"], value=b"Thingy")
            characteristic(cfg, P.THINGY_FIRMWARE_UUID, ["read"], value=b"\x02\x01\x00")
            align()
            mot = service(P.THINGY_MOTION_SERVICE_UUID)
            characteristic(mot, P.THINGY_MOTION_CONFIG_UUID, ["read", "write"], "thingy-config")
            characteristic(mot, P.THINGY_QUATERNION_UUID, ["notify"])
            characteristic(mot, P.THINGY_PEDOMETER_UUID, ["notify"])
            characteristic(mot, P.THINGY_HEADING_UUID, ["notify"])
            characteristic(mot, P.THINGY_GRAVITY_UUID, ["notify"], "thingy-gravity")
        for svc in self.services:
            self.sim.export(svc)
            for chrc in svc.characteristics:
                self.sim.export(chrc)
                for desc in chrc.descriptors:
                    self.sim.export(desc)

    def _drop_gatt(self):
        for svc in self.services:
            for chrc in svc.characteristics:
                chrc.drop_sessions()
                for desc in chrc.descriptors:
                    self.sim.unexport(desc)
                self.sim.unexport(chrc)
            self.sim.unexport(svc)
        self.services = []
        self.stream.clear()

    def characteristics(self):
        return [c for s in self.services for c in s.characteristics]

    def gatt_exported(self, chrc):
        return self.state == "connected" and chrc in self.characteristics()

    def data_characteristic(self, role):
        return next((c for c in self.characteristics() if c.role == role), None)

    def find_characteristic(self, name):
        """By role name or UUID."""
        name = str(name).lower()
        return next((c for c in self.characteristics()
                     if name in (c.role, str(c.props[CHRC_IFACE]["UUID"]).lower())), None)

    # -- data
    def rate_of(self, chrc):
        """Notifications per second of a data characteristic."""
        if chrc.role == "microbit":
            return min(1000.0 / self.microbit_period, MICROBIT_MAX_HZ)
        if chrc.role == "thingy-gravity":
            return float(self.thingy_config[3])
        if chrc.role == "thingy-mic":
            return P.THINGY_MIC_RATE / P.THINGY_MIC_SAMPLES       # 62.5 frames a second
        return self.sim.args.rate

    def notify_started(self, chrc):
        self.stream[chrc] = [time.monotonic(), 0, self.rate_of(chrc)]

    def restart_streams(self):
        """The sample rate changed (period or motion config written)."""
        for chrc in list(self.stream):
            self.stream[chrc] = [time.monotonic(), 0, self.rate_of(chrc)]

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
        if chrc.role == "thingy-gravity":
            return P.encode_thingy_gravity(*vec)
        return P.encode_microbit(*vec)

    def read_value(self, chrc):
        if chrc.role in ("posture", "microbit", "thingy-gravity"):
            vec = self.last_sample or self.sample(self.sim.clock.now())
            return self.encode(chrc, vec)
        if chrc.role == "microbit-period":
            return struct.pack("<H", self.microbit_period)
        if chrc.role == "thingy-config":
            return P.encode_thingy_config(*self.thingy_config)
        if chrc.role == "thingy-sound-config":
            return bytes(self.sound_config)
        return chrc.static_value

    def write_value(self, chrc, data):
        """Apply a written value; returns None or the error BlueZ would answer with."""
        if chrc.role == "microbit-period":
            if len(data) != 2:
                return bluez_error("InvalidValueLength", "Invalid Length")
            asked = struct.unpack("<H", data)[0]
            self.microbit_period = P.nearest_microbit_period(asked)
            log.info("%s: accelerometer period %d ms asked, %d ms chosen", self.address, asked,
                     self.microbit_period)
            self.restart_streams()
            return None
        if chrc.role == "thingy-config":
            # The firmware refuses (ATT Write Not Permitted) a wrong length or values out
            # of range; the simulator checks the frequency (5-200 Hz), wake-on-motion (0/1)
            # and that the intervals are at least 100 ms.
            try:
                cfg = P.decode_thingy_config(data)
            except ValueError:
                return bluez_error("NotPermitted", "Write not permitted")
            if not P.THINGY_FREQ_MIN <= cfg[3] <= P.THINGY_FREQ_MAX or cfg[4] > 1 or \
                    min(cfg[:3]) < 100:
                return bluez_error("NotPermitted", "Write not permitted")
            self.thingy_config = cfg
            log.info("%s: motion config %r", self.address, cfg)
            self.restart_streams()
            return None
        if chrc.role == "thingy-sound-config":
            # speaker mode 1-3, microphone mode 1 (ADPCM) or 2 (SPL), else refused
            if len(data) != 2 or not 1 <= data[0] <= 3 or data[1] not in (1, 2):
                return bluez_error("NotPermitted", "Write not permitted")
            self.sound_config = (data[0], data[1])
            log.info("%s: sound config speaker %d microphone %d", self.address, *self.sound_config)
            return None
        if chrc.static_value is not None and "write" in chrc.flags:
            chrc.static_value = data
            return None
        return bluez_error("NotPermitted", "Write not permitted")

    def send(self, chrc, data):
        """Notify `data` unless the simulated radio loses it (the caller has already
        counted it in the sequence counter). Returns True if it went out. With SetGarbage,
        a bad payload may follow."""
        self.counters["sent"] += 1
        if chrc.loss and self.rng.random() < chrc.loss:
            self.counters["lost"] += 1
            return False
        ok = chrc.notify(data)
        if ok:
            self.counters["delivered"] += 1
        if self.garbage and chrc.role in GARBAGE_KINDS and self.rng.random() < self.garbage:
            self.send_garbage(chrc, data)
        return ok

    def send_garbage(self, chrc, valid):
        kinds = [k for k in (self.garbage_kinds or GARBAGE_KINDS[chrc.role])
                 if k in GARBAGE_KINDS[chrc.role]]
        if not kinds:
            return
        kind = kinds[self.garbage_turn % len(kinds)]
        self.garbage_turn += 1
        b = bytearray(valid)
        if kind == "short":
            b = b[:-1]
        elif kind == "long":
            b += b"\x00"
        elif kind == "version":
            b[0] = 2
        elif kind == "backwards":
            struct.pack_into("<H", b, 1, (chrc.seq - 8) & 0xFFFF)
        elif kind == "kind":
            b[3] = 3
        elif kind == "intensity":
            b[4] = 101
        elif kind == "count":
            b[7] = 0
        elif kind == "nan":
            b = bytearray(struct.pack("<fff", float("nan"), 0.0, 9.8))
        elif kind == "inf":
            b = bytearray(struct.pack("<fff", 0.0, float("-inf"), 9.8))
        elif kind == "huge":
            b = bytearray(struct.pack("<fff", 0.0, 3.0e4, 9.8))
        elif kind == "index":
            b[2] = 89
        self.counters["garbage"] += 1
        self.counters["garbage_" + kind] += 1
        chrc.notify(bytes(b))

    def tick(self, t, now, speed):
        """Send the samples due by real time `now` (scenario time t)."""
        if self.sim.args.silent:           # --silent: connected, and nothing to say
            return
        for chrc, st in list(self.stream.items()):
            if not chrc.notifying or chrc.role not in ("posture", "microbit", "thingy-gravity",
                                                       "thingy-mic"):
                continue
            rate = st[2]
            due = int((now - st[0]) * rate) - st[1]
            if due > rate:                 # the loop stalled: skip ahead, do not flood
                st[1] += due - 1
                due = 1
            if chrc.role == "thingy-mic":
                for i in range(due):
                    frame = self.mic_frame()
                    if self.sound_config[1] == P.THINGY_MIC_MODE_ADPCM:
                        self.send(chrc, frame)
                    st[1] += 1
                continue
            for i in range(due):
                ti = t - (due - 1 - i) * speed / rate
                self.last_sample = self.sample(ti)
                if chrc.role == "posture":
                    chrc.seq = (chrc.seq + 1) & 0xFFFF
                self.send(chrc, self.encode(chrc, self.last_sample))
                st[1] += 1

    def mic_frame(self):
        """The next 256 samples the microphone hears (background noise and the cracks
        being played), ADPCM-encoded as a Thingy:52 frame."""
        rng, a, lp = self.rng, 0.7, self.mic_lp
        samples = []
        for _ in range(P.THINGY_MIC_SAMPLES):
            w = rng.gauss(0.0, MIC_NOISE)
            lp = a * lp + (1.0 - a) * w         # a little more low than high
            samples.append(lp * 1.6 + 0.3 * w)
        self.mic_lp = lp
        for snd in list(self.mic_sounds):
            pcm, pos = snd
            n = min(P.THINGY_MIC_SAMPLES, len(pcm) - pos)
            for i in range(n):
                samples[i] += pcm[pos + i]
            snd[1] += n
            if snd[1] >= len(pcm):
                self.mic_sounds.remove(snd)
        samples = [max(-32768, min(32767, int(round(v)))) for v in samples]
        frame, pred, index = P.encode_thingy_mic_frame(samples, *self.mic_state)
        self.mic_state = (pred, index)
        return frame

    def play_crack(self, kind, intensity, duration_ms, count):
        """A crack the microphone hears from the next frame on. Returns whether the
        microphone streams (ADPCM, someone subscribed)."""
        chrc = self.data_characteristic("thingy-mic")
        if chrc is None or not chrc.notifying or \
                self.sound_config[1] != P.THINGY_MIC_MODE_ADPCM:
            return False
        if len(self.mic_sounds) < 8:
            self.mic_sounds.append([P.crack_sound(self.rng, kind, intensity, duration_ms,
                                                  count), 0])
        log.debug("%s: plays a %s (intensity %d, %d ms, %d pops)", self.address, kind,
                  intensity, duration_ms, count)
        self.counters["cracks_played"] += 1
        return True

    def send_crack(self, kind, intensity, duration_ms, count, age_ms):
        chrc = self.data_characteristic("crack")
        if chrc is None or not chrc.notifying:
            return False
        chrc.seq = (chrc.seq + 1) & 0xFFFF
        data = P.encode_crack(chrc.seq, kind, intensity, duration_ms, count, age_ms)
        log.debug("%s: crack %s intensity=%d duration=%dms count=%d age=%dms", self.address,
                  kind, intensity, duration_ms, count, age_ms)
        return self.send(chrc, data)

    def drain_battery(self):
        if self.battery is not None and self.battery > 1 and self.connected:
            self.set_battery(self.battery - 1)

    def set_battery(self, pct):
        self.battery = pct
        if BATTERY_IFACE in self.props:
            self.set_prop(BATTERY_IFACE, "Percentage", dbus.Byte(pct))

    def status(self):
        chrcs = {c.role: c for c in self.characteristics() if c.role}
        sessions = dbus.Array([], signature="s")
        for role, c in sorted(chrcs.items()):
            if c.acquired is not None:
                sessions.append("%s:acquire:%s" % (role, c.acquired[0]))
            for sender, st in sorted(c.subscribers.items()):
                sessions.append("%s:start:%s%s" % (role, sender, "" if st == "active" else "(pending)"))
        out = {
            "Address": dbus.String(self.address),
            "Kind": dbus.String(self.kind),
            "State": dbus.String(self.state),
            "Exported": dbus.Boolean(self.exported),
            "Reachable": dbus.Boolean(self.reachable),
            "Paired": dbus.Boolean(self.paired),
            "Trusted": dbus.Boolean(bool(self.props[DEVICE_IFACE]["Trusted"])),
            "PairRequired": dbus.Boolean(self.pair_required),
            "Sessions": sessions,
            "Garbage": dbus.Double(self.garbage),
            "IndicateOnly": dbus.Boolean(self.indicate_only),
            "Counters": dbus.Dictionary({k: dbus.UInt32(v) for k, v in self.counters.items()},
                                        signature="su"),
        }
        if self.battery is not None:
            out["Battery"] = dbus.Byte(self.battery)
        if self.kind == "microbit":
            out["PeriodMs"] = dbus.UInt16(self.microbit_period)
        if self.kind == "thingy-sound":
            out["SoundConfig"] = dbus.Array([dbus.Byte(v) for v in self.sound_config],
                                            signature="y")
        if self.kind == "thingy":
            out["MotionConfig"] = dbus.Array([dbus.UInt16(v) for v in self.thingy_config],
                                             signature="q")
        data = next((c for c in chrcs.values() if c.role in GARBAGE_KINDS), None)
        if data is not None:
            out["NotifyPath"] = dbus.String(data.notify_path or "")
            out["Flags"] = dbus.Array(data.flags, signature="s")
            out["RateHz"] = dbus.Double(self.rate_of(data) if data.role != "crack" else 0.0)
        return dbus.Dictionary(out, signature="sv")


# ------------------------------------------------------------------------------ control

class SimControl(dbus.service.Object):
    """io.spinewatch.Sim1: the test control interface (not part of BlueZ's API)."""

    def __init__(self, sim):
        super().__init__(sim.bus, SIM_PATH)
        self.sim = sim
        self.burst = None
        self.burst_log = []

    def _device(self, address, exported=True):
        dev = self.sim.devices.get(str(address).upper())
        if dev is None or (exported and not dev.exported):
            raise sim_error("UnknownDevice", "No device %s" % address)
        return dev

    def _crack(self, address, kind, intensity, duration_ms, count, age_ms):
        dev = self._device(address)
        if dev.kind == "thingy-sound" and kind in P.CRACK_KINDS and 0 <= intensity <= 100:
            # a microphone: the crack is played into its audio (the age does not apply)
            return dbus.Boolean(dev.play_crack(str(kind), int(intensity), int(duration_ms),
                                               int(count)))
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
        """Notify arbitrary bytes on a characteristic (role name such as 'posture',
        'crack', 'microbit', 'thingy-gravity', or its UUID); the sequence counter is not
        touched."""
        dev = self._device(address)
        chrc = dev.find_characteristic(characteristic)
        if chrc is None or not chrc.can_notify:
            raise sim_error("InvalidArguments", "%s has no notifying characteristic %s "
                            "(connected?)" % (address, characteristic))
        if not chrc.notifying:
            return dbus.Boolean(False)
        return dbus.Boolean(chrc.notify(bytes(value)))

    @dbus.service.method(SIM_IFACE, in_signature="sd", out_signature="")
    def SetAngle(self, address, degrees):
        """Hold a posture sensor at `degrees` of flexion from upright until Resume()."""
        dev = self._device(address, exported=False)
        if dev.kind == "mic":
            raise sim_error("NotSupported", "%s is not a posture sensor" % address)
        if not 0.0 <= degrees <= 180.0:
            raise sim_error("InvalidArguments", "degrees must be 0-180")
        dev.angle_override = float(degrees)
        log.info("%s: angle held at %.1f degrees", dev.address, degrees)

    @dbus.service.method(SIM_IFACE, in_signature="sd", out_signature="")
    def SetLoss(self, address, fraction):
        """Lose this fraction (0-1) of notifications over the air (seq still counts)."""
        dev = self._device(address, exported=False)
        if not 0.0 <= fraction <= 1.0:
            raise sim_error("InvalidArguments", "fraction must be 0-1")
        dev.loss = float(fraction)
        for chrc in dev.characteristics():
            chrc.loss = dev.loss

    @dbus.service.method(SIM_IFACE, in_signature="sb", out_signature="")
    def SetReachable(self, address, reachable):
        """Out of range: the link drops, Connect fails after a timeout, discovery does not
        see it."""
        dev = self._device(address, exported=False)
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
        a = self.sim.adapter
        return dbus.Dictionary({
            "Scenario": dbus.String(self.sim.args.scenario),
            "Seed": dbus.Int64(self.sim.args.seed),
            "Speed": dbus.Double(self.sim.args.speed),
            "Rate": dbus.Double(self.sim.args.rate),
            "Started": dbus.Boolean(clock.started),
            "Paused": dbus.Boolean(clock.paused),
            "Time": dbus.Double(clock.now()),
            "RequireDiscovery": dbus.Boolean(self.sim.args.require_discovery),
            "AdapterPresent": dbus.Boolean(self.sim.adapter_present),
            "Powered": dbus.Boolean(self.sim.adapter_present and a.powered),
            "Discovering": dbus.Boolean(self.sim.adapter_present and a.discovering),
            "DiscoverySessions": dbus.Array(sorted(a.sessions), signature="s"),
            "Agents": dbus.Array(["%s %s %s" % ((s,) + v) for s, v in
                                  sorted(self.sim.root.agents.items())], signature="s"),
            "Devices": dbus.Array(sorted(self.sim.devices), signature="s"),
        }, signature="sv")

    # -- issue 3 additions
    @dbus.service.method(SIM_IFACE, in_signature="s", out_signature="a{sv}")
    def GetDevice(self, address):
        """State, pairing, notify sessions (role:acquire|start:sender), counters (sent,
        delivered, lost, garbage, garbage_<kind>, fd_full, links_down, paired), battery,
        micro:bit period, Thingy motion config."""
        return self._device(address, exported=False).status()

    @dbus.service.method(SIM_IFACE, in_signature="", out_signature="a(dsssav)")
    def GetCalls(self):
        """Every BlueZ method call clients made (and agent requests the simulator made):
        (CLOCK_MONOTONIC seconds, sender, object path, Interface.Method, arguments)."""
        return dbus.Array([dbus.Struct((dbus.Double(t), dbus.String(s), dbus.String(p),
                                        dbus.String(m), dbus.Array(a, signature="v")),
                                       signature="dsssav")
                           for t, s, p, m, a in self.sim.calls], signature="(dsssav)")

    @dbus.service.method(SIM_IFACE, in_signature="", out_signature="")
    def ClearCalls(self):
        self.sim.calls.clear()

    @dbus.service.method(SIM_IFACE, in_signature="sb", out_signature="")
    def SetPairingRequired(self, address, required):
        """Characteristics of the device answer NotAuthorized while it is not Paired."""
        self._device(address, exported=False).pair_required = bool(required)

    @dbus.service.method(SIM_IFACE, in_signature="s", out_signature="")
    def ForgetBond(self, address):
        """Both sides forget the bond: Paired and Bonded false (the link stays up)."""
        self._device(address, exported=False).forget_bond()

    @dbus.service.method(SIM_IFACE, in_signature="sss", out_signature="")
    def SetAcquireNotify(self, address, characteristic, error):
        """Make AcquireNotify on the device's characteristic (role or UUID; '' = all of
        them) fail with org.bluez.Error.<error> (NotSupported, NotPermitted, InProgress,
        Failed) or UnknownMethod (as a BlueZ without it); error '' allows it again."""
        dev = self._device(address, exported=False)
        if error and error not in ACQUIRE_ERRORS:
            raise sim_error("InvalidArguments", "error must be '' or one of " + ", ".join(ACQUIRE_ERRORS))
        key = str(characteristic)
        if key and key not in GARBAGE_KINDS:
            chrc = dev.find_characteristic(key)
            if chrc is None or not chrc.role:
                raise sim_error("InvalidArguments", "unknown characteristic %s" % key)
            key = chrc.role
        if error:
            dev.acquire_errors[key] = str(error)
        else:
            dev.acquire_errors.pop(key, None)

    @dbus.service.method(SIM_IFACE, in_signature="sb", out_signature="")
    def SetIndicateOnly(self, address, on):
        """From the next connection, the data characteristic has 'indicate' instead of
        'notify' (AcquireNotify then answers NotSupported, as BlueZ does)."""
        self._device(address, exported=False).indicate_only = bool(on)

    @dbus.service.method(SIM_IFACE, in_signature="sy", out_signature="")
    def SetBattery(self, address, percentage):
        dev = self._device(address, exported=False)
        if dev.battery is None:
            raise sim_error("NotSupported", "%s has no battery service" % address)
        if percentage > 100:
            raise sim_error("InvalidArguments", "percentage must be 0-100")
        dev.set_battery(int(percentage))

    @dbus.service.method(SIM_IFACE, in_signature="sd", out_signature="")
    def SetGarbage(self, address, fraction):
        """After each valid notification, with this probability, also notify a bad payload
        (the kinds of its role in turn; see README)."""
        dev = self._device(address, exported=False)
        if not 0.0 <= fraction <= 1.0:
            raise sim_error("InvalidArguments", "fraction must be 0-1")
        dev.garbage = float(fraction)

    @dbus.service.method(SIM_IFACE, in_signature="sas", out_signature="")
    def SetGarbageKinds(self, address, kinds):
        """Restrict SetGarbage to these kinds (empty: all kinds of the role)."""
        dev = self._device(address, exported=False)
        known = {k for ks in GARBAGE_KINDS.values() for k in ks}
        bad = [k for k in kinds if k not in known]
        if bad:
            raise sim_error("InvalidArguments", "unknown garbage kinds %s (known: %s)"
                            % (", ".join(bad), ", ".join(sorted(known))))
        dev.garbage_kinds = [str(k) for k in kinds] or None

    @dbus.service.method(SIM_IFACE, in_signature="", out_signature="")
    def RemoveAdapter(self):
        """hci0 is unplugged: GATT objects, devices, then the adapter are removed
        (InterfacesRemoved), links gone, no property signals."""
        if not self.sim.adapter_present:
            raise sim_error("NotSupported", "the adapter is already removed")
        self.sim.remove_adapter()

    @dbus.service.method(SIM_IFACE, in_signature="", out_signature="")
    def AddAdapter(self):
        """hci0 is plugged in again, powered, with its bonded devices (and, without
        --require-discovery, every other device except RemoveDevice'd ones)."""
        if self.sim.adapter_present:
            raise sim_error("NotSupported", "the adapter is present")
        self.sim.add_adapter()

    @dbus.service.method(SIM_IFACE, in_signature="suu", out_signature="b")
    def BurstCracks(self, address, count, rate_hz):
        """Notify `count` cracks at `rate_hz` on the Spine Mic, for benchmarks: crack i
        (0-based) is a click, intensity 50, count 1, age 0, duration_ms = i % 60000 + 1.
        GetBurstLog() gives each one's send time. False if nobody is subscribed."""
        dev = self._device(address)
        if dev.kind != "mic":
            raise sim_error("NotSupported", "%s has no Crack characteristic" % address)
        if count < 1 or not 1 <= rate_hz <= 100000:
            raise sim_error("InvalidArguments", "count >= 1, rate 1-100000 Hz")
        chrc = dev.data_characteristic("crack")
        if chrc is None or not chrc.notifying:
            return dbus.Boolean(False)
        if self.burst is not None:
            GLib.source_remove(self.burst["timer"])
        self.burst_log = []
        b = {"dev": dev, "count": int(count), "rate": float(rate_hz), "i": 0,
             "start": time.monotonic()}
        b["timer"] = GLib.timeout_add(1, self._burst_tick)
        self.burst = b
        log.info("%s: burst of %d cracks at %d Hz", dev.address, count, rate_hz)
        return dbus.Boolean(True)

    def _burst_tick(self):
        b = self.burst
        if b is None:
            return False
        dev = b["dev"]
        chrc = dev.data_characteristic("crack")
        due = min(b["count"], int((time.monotonic() - b["start"]) * b["rate"]) + 1)
        while b["i"] < due:
            i = b["i"]
            b["i"] += 1
            if chrc is None or not chrc.notifying:
                continue
            chrc.seq = (chrc.seq + 1) & 0xFFFF
            data = P.encode_crack(chrc.seq, "click", 50, i % 60000 + 1, 1, 0)
            t = time.monotonic()
            ok = dev.send(chrc, data)
            self.burst_log.append((i, chrc.seq, t, ok))
        if b["i"] >= b["count"]:
            self.burst = None
            return False
        return True

    @dbus.service.method(SIM_IFACE, in_signature="", out_signature="a(uqdb)")
    def GetBurstLog(self):
        """(index, crack seq, CLOCK_MONOTONIC send time, went out) per burst crack."""
        return dbus.Array([dbus.Struct((dbus.UInt32(i), dbus.UInt16(s), dbus.Double(t),
                                        dbus.Boolean(ok)), signature="uqdb")
                           for i, s, t, ok in self.burst_log], signature="(uqdb)")

    @dbus.service.method(SIM_IFACE, in_signature="", out_signature="b")
    def BurstRunning(self):
        return dbus.Boolean(self.burst is not None)


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
        self.calls = collections.deque(maxlen=CALL_LOG_MAX)
        self.clock = Clock(args.speed)
        self.crack_t = 0.0
        self.pair_required = set(args.require_pairing)
        self.adapter_present = True
        self.om = ObjectManager(self)
        self.root = BluezRoot(self)
        self.adapter = Adapter(self)
        self.control = SimControl(self)
        self.export(self.root)
        self.export(self.adapter)
        lags = {"microbit": 20.0, "thingy": 40.0} if args.scenario == "desk-day" else {}
        tracks = {}
        self.devices = {}
        specs = DEVICE_SPECS + extra_clip_specs(args.extra_clips) + \
            ([THINGY_SOUND_SPEC] if args.thingy_sound else [])
        for spec in specs:
            if spec.track not in tracks:
                tracks[spec.track] = S.Track(args.scenario, args.seed, spec.track,
                                             lag=lags.get(spec.track, 0.0))
            dev = Device(self, spec, tracks[spec.track])
            self.devices[spec.address] = dev
            if not args.require_discovery:
                dev.export()
        bus.add_signal_receiver(self._name_owner_changed, signal_name="NameOwnerChanged",
                                dbus_interface="org.freedesktop.DBus",
                                bus_name="org.freedesktop.DBus", path="/org/freedesktop/DBus")
        self.tick_ms = 5 if args.rate > 100 else 10
        self.last_rssi = time.monotonic()
        self.last_drain = time.monotonic()
        GLib.timeout_add(self.tick_ms, self.tick)

    def record(self, sender, path, member, *args):
        self.calls.append((time.monotonic(), str(sender or ""), str(path), member, list(args)))

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

    # -- the adapter coming and going
    def remove_adapter(self):
        log.info("adapter hci0 removed")
        for dev in self.devices.values():
            dev.vanish()
        self.adapter_present = False
        self.unexport(self.adapter)
        self.adapter.reset()

    def add_adapter(self):
        log.info("adapter hci0 added")
        self.adapter.reset()
        self.adapter_present = True
        self.export(self.adapter)
        for dev in self.devices.values():
            if dev.paired or (not self.args.require_discovery and dev.removed_at is None):
                dev.export()

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
            if dev.pending_pair and dev.pending_pair["sender"] == sender:
                dev._fail_pair(bluez_error("AuthenticationCanceled", "Authentication Canceled"))
            for chrc in dev.characteristics():
                chrc.forget_sender(sender)

    # -- time
    def tick(self):
        try:
            now = time.monotonic()
            t = self.clock.now()
            for dev in self.devices.values():
                if dev.state == "connected":
                    dev.tick(t, now, self.args.speed)
            if t > self.crack_t:
                self._scripted_cracks(self.crack_t, t)
                self.crack_t = t
            self._discovery(now)
            if now - self.last_drain >= self.args.battery_drain > 0:
                self.last_drain = now
                for dev in self.devices.values():
                    dev.drain_battery()
        except Exception:       # a bug must not stop the simulated radio
            log.exception("tick failed")
        return True

    def _scripted_cracks(self, t0, t1):
        for dev in self.devices.values():
            if dev.kind == "thingy-sound" and dev.state == "connected":
                for c in dev.track.cracks_due(t0, t1):
                    dev.play_crack(c.kind, c.intensity, c.duration_ms, c.count)
                continue
            if dev.kind != "mic" or dev.state != "connected":
                continue
            for c in dev.track.cracks_due(t0, t1):
                age = (t1 - c.onset) * 1000.0 / self.args.speed
                dev.send_crack(c.kind, c.intensity, c.duration_ms, c.count, age)

    def _discovery(self, now):
        a = self.adapter
        if not self.adapter_present or not a.discovering:
            return
        running = now - a.discovery_started
        for n, dev in enumerate(self.devices.values()):
            if dev.exported or not dev.reachable or not a.matches_filters(dev):
                continue
            if dev.removed_at is not None:
                if now - dev.removed_at < REAPPEAR_MS / 1000.0 or \
                        running < FOUND_MS / 1000.0:
                    continue
            elif not self.args.require_discovery or \
                    running < (FOUND_MS + n * FOUND_STAGGER_MS) / 1000.0:
                continue
            log.info("%s: found by discovery", dev.address)
            dev.props[DEVICE_IFACE]["RSSI"] = dbus.Int16(dev.spec.rssi + dev.rng.randint(-4, 4))
            dev.export()
        if now - self.last_rssi >= RSSI_PERIOD_S:
            self.last_rssi = now
            for dev in self.devices.values():
                if dev.exported and not dev.connected and dev.reachable and a.matches_filters(dev):
                    dev._dev("RSSI", dbus.Int16(dev.spec.rssi + dev.rng.randint(-4, 4)))

    def discovery_stopped(self):
        """As BlueZ when discovery ends: RSSI of the devices seen no longer exists."""
        for dev in self.devices.values():
            if dev.exported:
                dev.drop_prop(DEVICE_IFACE, "RSSI")


# -------------------------------------------------------------------------------- main

def parse_args(argv):
    ap = argparse.ArgumentParser(description="Simulated BlueZ with spinewatch sensors.")
    ap.add_argument("--bus", help="D-Bus address (default: $DBUS_SYSTEM_BUS_ADDRESS)")
    ap.add_argument("--scenario", default="desk-day", choices=S.SCENARIOS)
    ap.add_argument("--speed", type=float, default=1.0, help="scenario time factor")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--duration", type=float, default=0.0,
                    help="exit after this many real seconds (0: run until stopped)")
    ap.add_argument("--rate", type=float, default=20.0,
                    help="Spine Clip posture samples per second")
    ap.add_argument("--require-discovery", "--discoverable-only", dest="require_discovery",
                    action="store_true",
                    help="devices appear only while a client runs StartDiscovery")
    ap.add_argument("--require-pairing", default=MICROBIT_ADDRESS, metavar="ADDR,...|none",
                    help="devices whose characteristics need pairing (default: the micro:bit)")
    ap.add_argument("--extra-clips", type=int, default=0, metavar="N",
                    help="N more Spine Clip-like posture sensors, C0:FF:EE:00:01:01 and up")
    ap.add_argument("--thingy-sound", action="store_true",
                    help="add a Thingy:52 sound sensor (C0:FF:EE:00:00:05) streaming ADPCM audio")
    ap.add_argument("--silent", action="store_true",
                    help="connected sensors send nothing of their own (no posture, micro:bit, "
                         "Thingy samples or audio); injected cracks still go out")
    ap.add_argument("--battery-drain", type=float, default=60.0, metavar="SEC",
                    help="a connected sensor's battery loses 1%% every SEC seconds (0: never)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    if args.speed <= 0 or args.rate <= 0 or args.rate > 1000:
        ap.error("--speed must be > 0 and --rate in (0, 1000]")
    if not 0 <= args.extra_clips <= 200:
        ap.error("--extra-clips must be 0-200")
    req = args.require_pairing.strip()
    args.require_pairing = [] if req.lower() in ("", "none") else \
        [a.strip().upper() for a in req.split(",") if a.strip()]
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
