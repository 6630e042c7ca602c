"""The embedded broker: kombu's SQLAlchemy transport over an SQLite file (``sqla+sqlite://``).

kombu 5.x hands every transport option to ``create_engine``, so the virtual transport's
``polling_interval`` cannot be set through ``broker_transport_options`` (create_engine
refuses the keyword). This transport drops it before the engine is made; the rest is
kombu's. The default interval is 1 s; 0.2 s keeps firing within a second of its time.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import sqlalchemy as kombu_sqla

ENGINE_IGNORES = ("polling_interval",)


class Channel(kombu_sqla.Channel):
    def _engine_from_config(self) -> Any:
        conninfo = self.connection.client
        saved = conninfo.transport_options
        conninfo.transport_options = {k: v for k, v in saved.items() if k not in ENGINE_IGNORES}
        try:
            return super()._engine_from_config()
        finally:
            conninfo.transport_options = saved


class Transport(kombu_sqla.Transport):
    Channel = Channel
