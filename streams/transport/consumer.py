"""The app's Faust consumer, for both broker profiles: Faust's aiokafka consumer with
the ack guard (`streams.transport.acks`) and one flow race per fetch (`streams.transport.drain`).

Faust picks a transport by the scheme of its `broker_consumer` URL; the `kafka`
profile names `kafka+sync://` (registered here), the `embedded` profile `tansu://`
(`streams.transport.tansu`, this consumer plus Tansu's corrections).
"""

from __future__ import annotations

from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers import aiokafka as faust_aiokafka

from streams.transport import acks
from streams.transport.drain import DrainPerFetch

SCHEME = "kafka+sync"


class Consumer(DrainPerFetch, acks.Consumer):
    """Faust's aiokafka consumer: acks as `acks.Consumer`, drain loop as `DrainPerFetch`."""


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer


TRANSPORTS.aliases[SCHEME] = f"{__name__}:Transport"
