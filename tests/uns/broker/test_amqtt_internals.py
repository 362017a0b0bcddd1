"""Fail loudly when an amqtt upgrade changes the internals uns/broker/core.py and framing.py rely on."""

import asyncio
import collections
import inspect
from importlib.metadata import version

import pytest
from amqtt.adapters import BufferReader, ReaderAdapter, StreamReaderAdapter
from amqtt.broker import Broker, RetainedApplicationMessage
from amqtt.mqtt.packet import MQTTFixedHeader
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.mqtt.protocol.handler import ProtocolHandler, packet_class
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import IncomingApplicationMessage, Session

from tests.fixtures.broker import broker_test_config
from uns.broker.core import UnsBroker
from uns.broker.handler import _HANDLERS, FastBrokerHandler

# method -> the parameter names amqtt 0.12.1 gives it (our overrides keep them)
OVERRIDDEN = {
    "_client_connected": ["self", "listener_name", "reader", "writer"],
    "_handle_client_session": ["self", "reader", "writer", "client_session", "handler", "server", "listener_name"],
    "_authenticate": ["self", "session", "_"],
    "_handle_message_delivery": ["self", "client_session", "handler", "wait_deliver"],
    "_broadcast_message": ["self", "session", "topic", "data", "force_qos"],
    "_run_broadcast": ["self", "running_tasks"],
    "_broadcast_loop": ["self"],
    "stream_connected": ["self", "reader", "writer", "listener_name"],
    "ws_connected": ["self", "websocket", "listener_name"],
    "shutdown": ["self"],
    "_client_message_loop": ["self", "client_session", "handler"],
    "add_subscription": ["self", "subscription", "session"],
    "_del_subscription": ["self", "a_filter", "session"],
    "_del_all_subscriptions": ["self", "session"],
    "_topic_filtering": ["self", "session", "topic", "action"],
    "_handle_subscription": ["self", "client_session", "handler", "subscribe_waiter"],
    "_publish_retained_messages_for_subscription": ["self", "subscription", "session"],
    # uns/broker/sessions.py and persistence.py
    "_initialize_client_session": ["self", "reader", "writer", "remote_address", "remote_port"],
    "_delete_session": ["self", "client_id"],
    "_handle_disconnect": ["self", "client_session", "handler", "disconnect_waiter"],
    "_publish_session_retained_messages": ["self", "session"],
    "_start_listeners": ["self"],
    "start": ["self"],
}
# what we call or read without overriding
USED = [
    "_get_handler",
    "_handle_unsubscription",
    "create_offline_session",
    "_shutdown_broadcast_loop",
    "start",
    "shutdown",
]


def test_amqtt_version_is_the_pinned_one() -> None:
    assert version("amqtt") == "0.12.1", "uns/broker/core.py overrides amqtt internals: re-check them all"


@pytest.mark.parametrize(("name", "params"), OVERRIDDEN.items())
def test_overridden_methods_still_exist_with_the_same_parameters(name: str, params: list[str]) -> None:
    original = getattr(Broker, name)
    assert list(inspect.signature(original).parameters) == params
    assert inspect.iscoroutinefunction(original) == inspect.iscoroutinefunction(getattr(UnsBroker, name))
    assert len(inspect.signature(getattr(UnsBroker, name)).parameters) == len(params)


@pytest.mark.parametrize("name", USED)
def test_used_methods_exist(name: str) -> None:
    assert callable(getattr(Broker, name))


async def test_broker_attributes_we_read() -> None:
    broker = Broker({"listeners": {"default": {"type": "tcp", "bind": "127.0.0.1:0"}}, "plugins": {}})
    for attribute in ("_sessions", "_subscriptions", "_retained_messages", "_servers"):
        assert isinstance(getattr(broker, attribute), dict)
    assert isinstance(broker._broadcast_queue, asyncio.Queue)
    assert isinstance(broker._tasks_queue, collections.deque)
    assert isinstance(broker._broadcast_shutdown_waiter, asyncio.Future)
    # amqtt's reader cancels per-packet tasks when the stream ends (framing.py yields before EOF for it)
    assert "running_tasks.popleft().cancel()" in inspect.getsource(ProtocolHandler._reader_loop)
    # and reads each packet through reader.read(n), starting with the fixed header
    assert "MQTTFixedHeader.from_stream(self.reader)" in inspect.getsource(ProtocolHandler._reader_loop)
    for name in ("wait_disconnect", "get_next_pending_subscription", "get_next_pending_unsubscription"):
        assert inspect.iscoroutinefunction(getattr(BrokerProtocolHandler, name))
    assert list(inspect.signature(RetainedApplicationMessage).parameters) == ["source_session", "topic", "data", "qos"]


def test_session_and_handler_fields_we_use() -> None:
    session = Session()
    for attribute in ("client_id", "username", "password", "clean_session", "is_anonymous", "remote_address"):
        assert hasattr(session, attribute)
    assert isinstance(session.delivered_message_queue, asyncio.Queue)
    assert session.transitions.state == "new"
    assert "reader" in inspect.getsource(BrokerProtocolHandler.__mro__[1].attach)
    assert inspect.iscoroutinefunction(BrokerProtocolHandler.handle_connection_closed)
    assert inspect.iscoroutinefunction(BrokerProtocolHandler.mqtt_publish)


def test_reader_and_plugin_bases() -> None:
    assert {m for m in ReaderAdapter.__abstractmethods__} == {"read", "feed_eof"}
    assert inspect.iscoroutinefunction(BaseAuthPlugin.authenticate)
    assert inspect.iscoroutinefunction(BaseTopicPlugin.topic_filtering)
    assert "session" in inspect.signature(BaseAuthPlugin.authenticate).parameters
    assert list(inspect.signature(BaseTopicPlugin.topic_filtering).parameters) == ["self", "session", "topic", "action"]


async def test_our_two_plugins_are_the_only_ones_loaded() -> None:
    config = broker_test_config()
    broker = UnsBroker(settings=config)
    assert sorted(type(p).__name__ for p in broker.plugins_manager.plugins) == ["AclTopicPlugin", "UnsAuthPlugin"]
    assert list(broker.listeners_config) == ["default"]
    assert broker.listeners_config["default"].bind == "127.0.0.1:0"


# uns/broker/handler.py replaces the reader loop and calls these handler methods by name
@pytest.mark.parametrize(
    "name",
    [
        "_reader_loop",
        "handle_publish",
        "handle_connect",
        "handle_connection_closed",
        "stop",
        *sorted(set(_HANDLERS.values())),
    ],
)
def test_handler_methods_our_reader_calls_exist(name: str) -> None:
    assert inspect.iscoroutinefunction(getattr(BrokerProtocolHandler, name))


def test_handler_fields_and_packet_helpers_our_reader_uses() -> None:
    assert list(inspect.signature(packet_class).parameters) == ["fixed_header"]
    assert inspect.iscoroutinefunction(MQTTFixedHeader.from_stream)
    source = inspect.getsource(ProtocolHandler.__init__) + inspect.getsource(ProtocolHandler.start)
    for field in ("_reader_ready", "_reader_stopped", "plugins_manager", "_reader_task"):
        assert field in source
    assert FastBrokerHandler._reader_loop is not BrokerProtocolHandler._reader_loop


async def test_what_our_own_publish_reading_relies_on() -> None:
    # framing.py reads a TCP connection's asyncio.StreamReader in chunks through the adapter's _reader
    stream = asyncio.StreamReader()
    assert StreamReaderAdapter(stream)._reader is stream
    # handler.py: other packets parse from their bytes; PACKET_RECEIVED watchers are looked up by event
    from amqtt.events import MQTTEvents
    from amqtt.mqtt.puback import PubackPacket

    header = MQTTFixedHeader(4, 0, 2)
    packet = await packet_class(header).from_stream(BufferReader(b"\x00\x07"), fixed_header=header)
    assert isinstance(packet, PubackPacket)
    assert packet.packet_id == 7
    from amqtt.plugins.manager import PluginManager

    assert "self._event_plugin_callbacks" in inspect.getsource(PluginManager)
    assert MQTTEvents.PACKET_RECEIVED == "mqtt_packet_received"
    # the session's delivery queue takes IncomingApplicationMessage(packet_id, topic, qos, data, retain)
    assert list(inspect.signature(IncomingApplicationMessage).parameters) == [
        "packet_id",
        "topic",
        "qos",
        "data",
        "retain",
    ]


# --- uns/broker/sessions.py and persistence.py ----------------------------------------------------


def test_session_fields_our_session_handling_uses() -> None:
    from collections import OrderedDict

    from amqtt.contexts import BrokerConfig
    from amqtt.session import OutgoingApplicationMessage

    session = Session()
    assert isinstance(session.attributes, dict)
    assert isinstance(session.inflight_out, OrderedDict)
    assert isinstance(session.inflight_in, OrderedDict)
    for attribute in ("parent", "last_disconnect_time", "will_retain", "ssl_object", "remote_port", "keep_alive"):
        assert hasattr(session, attribute)
    message = OutgoingApplicationMessage(7, "t", 1, b"x", False)
    assert message.build_publish_packet(dup=True).dup_flag is True
    assert message.pubrel_packet is None
    assert "session_expiry_interval" in BrokerConfig.__dataclass_fields__


def test_broker_session_flow_we_build_on() -> None:
    # start() clears state, then opens listeners: we load the stored state in _start_listeners
    start = inspect.getsource(Broker.start)
    assert start.index("self._retained_messages.clear()") < start.index("await self._start_listeners()")
    # a resumed session gets parent (Session Present) 1; a clean one is deleted first
    init = inspect.getsource(Broker._initialize_client_session)
    assert "client_session.parent = 1" in init
    assert "await self._delete_session(client_session.client_id)" in init
    # handler.start() (which re-sends in-flight messages) runs before the session's queue is sent
    handle = inspect.getsource(Broker._handle_client_session)
    assert handle.index("await handler.start()") < handle.index("await self._publish_session_retained_messages")
    assert "transitions.connect()" in handle
    assert "await self._retry_deliveries()" in inspect.getsource(ProtocolHandler.start)
    # the monitor sweeps disconnected clean (and "anonymous") sessions; our auth never sets is_anonymous
    assert "session.is_anonymous or session.clean_session" in inspect.getsource(Broker._session_monitor)
    # mqtt_publish hands the message to the QoS flows we replace
    assert "await self._handle_message_flow(message)" in inspect.getsource(ProtocolHandler.mqtt_publish)


@pytest.mark.parametrize(
    "name",
    [
        "_handle_qos1_message_flow",
        "_handle_qos2_message_flow",
        "_handle_message_flow",
        "_retry_deliveries",
        "handle_puback",
        "handle_pubrec",
        "handle_pubcomp",
        "_send_packet",
        "mqtt_publish",
    ],
)
def test_handler_methods_our_session_handler_replaces_or_calls(name: str) -> None:
    from uns.broker.sessions import SessionHandler

    assert inspect.iscoroutinefunction(getattr(ProtocolHandler, name))
    assert next(iter(inspect.signature(getattr(ProtocolHandler, name)).parameters)) == "self"
    assert inspect.iscoroutinefunction(getattr(SessionHandler, name))


# --- uns/broker/preface.py, routing.py (issue 12) -------------------------------------------------


def test_what_the_preface_check_and_shared_routing_rely_on() -> None:
    from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
    from amqtt.session import OutgoingApplicationMessage

    from uns.broker.sessions import SharedOutgoing

    # amqtt reads the CONNECT from the (our, rewritten for 3.1) reader, and refuses other names and levels
    init = inspect.getsource(BrokerProtocolHandler.init_from_connect)
    assert "ConnectPacket.from_stream(reader)" in init
    assert 'connect.proto_name != "MQTT"' in init
    # the 3.1 CONNACK override keeps amqtt's signature; Session Present comes from session.parent
    assert list(inspect.signature(BrokerProtocolHandler.mqtt_connack_authorize).parameters) == ["self", "authorize"]
    assert "self.session.parent" in inspect.getsource(BrokerProtocolHandler.mqtt_connack_authorize)
    # a shared in-flight message is an OutgoingApplicationMessage amqtt's flows accept, with its group
    params = list(inspect.signature(OutgoingApplicationMessage).parameters)
    assert params == ["packet_id", "topic", "qos", "data", "retain"]
    message = SharedOutgoing(3, "t", 1, b"x", share="$share/g/t")
    assert (message.packet_id, message.share, message.pubrec_packet) == (3, "$share/g/t", None)
    assert isinstance(Session().next_packet_id, int)
    # UNSUBSCRIBE goes through _del_subscription, which routing.py extends for $share strings
    assert "self._del_subscription(topic, client_session)" in inspect.getsource(Broker._handle_unsubscription)


def test_what_admission_and_the_quiet_log_filter_rely_on() -> None:
    """uns/broker/admission.py counts slots itself; uns/broker/quiet.py re-logs amqtt's per-connection lines."""
    import amqtt.broker as amqtt_broker
    import amqtt.mqtt.protocol.handler as amqtt_handler
    from amqtt.broker import Server

    from uns.broker import quiet

    assert Server("default", None, 0).semaphore is None  # max_connections 0: amqtt makes nobody wait
    assert amqtt_broker.__name__ == quiet._BROKER
    assert amqtt_handler.__name__ == quiet._HANDLER
    source = inspect.getsource(amqtt_broker)
    for prefix in quiet._PER_CONNECTION + quiet._REDUNDANT:
        assert prefix in source, prefix
    assert "handle_connect" in BrokerProtocolHandler.__dict__  # a second CONNECT: FastBrokerHandler overrides it
