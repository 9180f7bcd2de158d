"""Wiring: one place that builds the services, starts Slack (HTTP or Socket Mode) and stops cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import aiohttp
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

import bot
from bot import heap
from bot.admin.reload_service import ConfigWatcher
from bot.admin.service import AdminCommands
from bot.admin.stats_service import MetricsRecorder
from bot.chat import privacy
from bot.chat.guards import ChatGuards
from bot.chat.service import ChatService
from bot.config.live import LiveConfig
from bot.contracts.live import ContractsHolder
from bot.errors import DatabaseUnavailableError, StartupError
from bot.images.requests import PictureDesk
from bot.llm.chain_logic import counting_model
from bot.llm.gateway import ChatGateway
from bot.llm.provider_probe import require_installed
from bot.observability.metrics import LukasMetrics
from bot.scheduling import DISABLED, ImageScheduler
from bot.settings import Settings
from bot.shared.state import shared_state
from bot.slack.alerts import AdminAlerter
from bot.slack.auth import seed_bolt_authorization, verify_token
from bot.slack.channel_check import ChannelMembershipCheck
from bot.slack.client import DEFAULT_API_URL, build_web_client
from bot.slack.connecting import SlackConnecting, SocketModeLog, readiness_gate
from bot.slack.home_tab import HomeTab
from bot.slack.platform import SlackPlatform
from bot.slack.replies import UserNames
from bot.slack.server import build_health_app, build_web_app, start_http
from bot.slack.socket_health import SocketHealth, socket_client_probe
from bot.slack.threads import ThreadReader
from bot.store.db import create_engine, ping, session_factory
from bot.store.units import UnitRunner
from bot.tokens.counting import encoding_for

log = logging.getLogger(__name__)


class _QuietBoltTokenWarning(logging.Filter):
    """Bolt warns that SLACK_BOT_TOKEN is unused when a client is given; Lukas's client carries that token."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


logging.getLogger("slack_bolt.AsyncApp").addFilter(_QuietBoltTokenWarning())


@dataclass
class Services:
    """Everything the listeners and jobs share. Built once per process (and per event loop)."""

    settings: Settings
    config: LiveConfig
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    store: UnitRunner
    slack: AsyncWebClient
    alerter: AdminAlerter
    contracts: ContractsHolder
    gateway: ChatGateway
    chat: ChatService
    prometheus: LukasMetrics
    started_at: float = field(default_factory=time.time)

    async def close(self) -> None:
        await asyncio.to_thread(self.store.close)
        await self.engine.dispose()


def provider_api_keys(settings: Settings) -> dict[str, str]:
    """`<PROVIDER>_API_KEY` variables from the environment, by any-llm provider name."""
    keys = {}
    for name, value in settings.env.items():
        if name.endswith("_API_KEY") and value:
            keys[name.removesuffix("_API_KEY").lower()] = value
    return keys


def build_services(settings: Settings, config: LiveConfig) -> Services:
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    slack = build_web_client(
        token=settings.bot_token,
        api_url=settings.slack_api_url,
        max_retry_after=lambda: config.current.replicas.slack_max_retry_after_seconds,
    )
    alerter = AdminAlerter(client=slack, config=config, notices=engine)
    contracts = ContractsHolder(config)
    shared = shared_state(settings.redis_url)
    gateway = ChatGateway(
        config=config, api_keys=provider_api_keys(settings), alert_admins=alerter.alert, shared=shared
    )
    config.add_check(require_installed)  # a reload naming a provider whose SDK is missing is refused (issue 18)
    names = UserNames(slack, ttl_seconds=lambda: config.current.slack.user_cache_seconds)
    store = UnitRunner(engine)
    threads = ThreadReader(
        slack,
        names,
        page_size=lambda: config.current.memory.thread_page_size,
        max_pages=lambda: config.current.memory.thread_max_pages,
    )
    platform = SlackPlatform(slack, config=config, names=names, threads=threads)
    guards = ChatGuards(config=config, alert=alerter.alert, shared=shared.guard_windows if shared else None)
    metrics = LukasMetrics(breakers=gateway.breaker_states)
    chat = ChatService(
        config=config,
        store=store,
        platform=platform,
        gateway=gateway,
        contracts=contracts,
        guards=guards,
        on_event=metrics.event,
        on_model_calls=metrics.model_calls,
    )
    metrics.in_flight = lambda: chat.in_flight
    return Services(
        settings=settings,
        config=config,
        engine=engine,
        sessions=sessions,
        store=store,
        slack=slack,
        alerter=alerter,
        contracts=contracts,
        gateway=gateway,
        chat=chat,
        prometheus=metrics,
    )


class Lukas:
    """A running bot. `start()` returns once Slack traffic is being served; `stop()` drains and closes."""

    def __init__(self, settings: Settings, config: LiveConfig) -> None:
        # The tokenizer now, not on the first message (it takes ~0.5 s and would stall that ack), and on this thread
        # before anything else is built: the parse's freed heap is then reused by what follows. Loaded on a worker
        # thread during start(), ~10 MB of it stayed resident in that thread's malloc arena.
        tokenizer = encoding_for(counting_model(config.current), config.current.llm.default_encoding)
        # Its first encode on a thread builds that thread's matcher (~45 ms, ~10 MB): here, not in the first accept
        # before its ack (this is the thread that serves events).
        tokenizer.encode("Lukas wakes up")
        self.settings = settings
        self.config = config
        self.services = build_services(settings, config)
        services = self.services
        self.images = ImageScheduler(services)
        self.watcher = ConfigWatcher(config, alert=services.alerter.alert)
        self.metrics = MetricsRecorder(
            sessions=services.sessions,
            config=config,
            contracts=lambda: services.contracts().metrics(),
            breakers=services.gateway.breaker_states,
            version=bot.__version__,
            started_at=dt.datetime.fromtimestamp(services.started_at, dt.UTC),
        )
        self.admin = AdminCommands(
            services=services, watcher=self.watcher, scheduler=self.images, health=self.health, version=bot.__version__
        )
        self.pictures = PictureDesk(
            config=config,
            sessions=services.sessions,
            slack=services.slack,
            image_client=self.images.job.image_client,
            check_prompt=self.images.job.check_prompt,
            delivery=self.images.job.delivery,
        )
        services.chat.pictures = self.pictures.accept
        self.admin.pictures = self.pictures
        self.home = HomeTab(
            client=services.slack,
            config=config,
            sessions=services.sessions,
            chain=lambda: tuple(spec.key for spec in services.gateway.chain()),
            breakers=services.gateway.breaker_states,
            next_picture=self.images.next_run,
        )
        self.images.job.on_picture = self.home.refresh_all
        self.channel_check = ChannelMembershipCheck(client=services.slack, config=config, alert=services.alerter.alert)
        config.on_change(self.channel_check.on_change)
        self.bolt = self._build_bolt()
        self._auth: dict[str, Any] | None = None  # auth.test's answer, once checked at start
        self._http: web.AppRunner | None = None
        self._socket_handler: Any = None
        self.socket_health: SocketHealth | None = SocketHealth() if settings.socket_mode else None
        self.connecting = SlackConnecting(url=settings.slack_api_url or DEFAULT_API_URL)
        self._intake: Callable[[Any], Awaitable[bool]] | None = None  # the direct intake, once auth.test answered
        self._background: list[asyncio.Task[None]] = []

    def _build_bolt(self) -> AsyncApp:
        settings = self.settings
        app = AsyncApp(
            client=self.services.slack,
            signing_secret=settings.signing_secret or "unused-in-socket-mode",
            process_before_response=True,  # listeners only store and schedule; the reply work runs after ack
            # HTTP mode: bot/slack/server.py checks every signature before Bolt sees the request (one HMAC, not two).
            request_verification_enabled=False,
        )
        from bot.slack.listeners import register_listeners

        register_listeners(app, self.services.chat, admin=self.admin, home=self.home)
        return app

    async def health(self) -> tuple[bool, dict[str, Any]]:
        """/healthz: unhealthy (503) while Slack is not reached yet at start, when the database is unreachable, or
        (Socket Mode) the socket to Slack has been down longer than 30 s; the scheduler state is reported."""
        next_run = self.images.next_run()
        details: dict[str, Any] = {
            "version": bot.__version__,
            "uptime_seconds": int(time.time() - self.services.started_at),
            "database": "ok",
            "scheduler": self.images.state,
            "next_image_run": next_run.isoformat() if next_run and self.images.state != DISABLED else None,
        }
        try:
            await asyncio.wait_for(ping(self.services.engine), timeout=5)
        except (DatabaseUnavailableError, TimeoutError):
            details["database"] = "unreachable"
            return False, details
        reached, slack = self.connecting.verdict()
        if not reached:
            details["slack"] = slack
            return False, details
        if self.socket_health is not None:
            socket_ok, details["socket"] = self.socket_health.verdict()
            return socket_ok, details
        return True, details

    async def metrics_text(self) -> bytes:
        """GET /metrics: the Prometheus text, with the stuck-question counts read now."""
        try:
            self.services.prometheus.stuck(await asyncio.wait_for(self.services.chat.stuck_counts(), timeout=5))
        except Exception as exc:  # the counters still answer while the database is away
            log.warning("/metrics: could not count stuck questions (%s)", type(exc).__name__)
        return self.services.prometheus.render()

    async def start(self, *, host: str = "0.0.0.0", port: int | None = None) -> int:
        """Serve /healthz at once (503 until Slack is reached), then get to Slack; returns the HTTP port (in Socket
        Mode, the port of /healthz). Cancelling it (a stop signal while Slack is unreachable) is safe: stop()."""
        await ping(self.services.engine)
        if self.services.slack.session is None:
            # One keep-alive connection pool for every Web API call, instead of a new session per call.
            self.services.slack.session = aiohttp.ClientSession()
        bound = await self.serve_http(host=host, port=port)
        within = self.config.current.slack.auth_retry_seconds
        checked = await verify_token(self.services.slack, within=within, connecting=self.connecting)
        if checked is not None and seed_bolt_authorization(self.bolt, checked):
            self._auth = dict(getattr(checked, "data", None) or {})  # the bot's own ids, for the direct intake
            if not self.settings.socket_mode:
                from bot.slack.listeners import direct_intake

                self._intake = direct_intake(self.services.chat, auth=self._auth)
        self.services.gateway.warm_up()
        heap.settle_after_start()
        try:  # before serving: on SQLite this picks up the previous process's unfinished answers at once
            await self.services.chat.sweep_once()
        except Exception as exc:
            log.warning("first sweep failed (%s); the sweeper tries again shortly", type(exc).__name__)
        self._background.append(asyncio.create_task(self.services.chat.keeper.run(), name="lease-keeper"))
        self._background.append(asyncio.create_task(self.services.chat.run_sweeper(), name="chat-sweeper"))
        self.images.start()
        self.channel_check.start()
        self._install_retention()
        self.watcher.prime()  # the file as started with: an edit made before the task first runs is still seen
        self._background.append(asyncio.create_task(self.watcher.run(), name="config-watcher"))
        self._background.append(asyncio.create_task(self.metrics.run(), name="metrics-snapshots"))
        self._background.append(asyncio.create_task(heap.trim_periodically(), name="heap-trim"))
        if self.settings.socket_mode:
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            self.connecting.stage("apps.connections.open", "opening the Socket Mode connection")
            self._socket_handler = AsyncSocketModeHandler(
                self.bolt, self.settings.app_token, logger=cast(logging.Logger, SocketModeLog(self.connecting))
            )
            await self._socket_handler.connect_async()  # retries until Slack answers
            self.watch_socket(socket_client_probe(self._socket_handler))
            log.info("Lukas is connected to Slack in Socket Mode")
        else:
            log.info("Lukas is listening on http://%s:%s/slack/events (health: /healthz)", host, bound)
        self.connecting.done()
        return bound

    async def serve_http(self, *, host: str = "0.0.0.0", port: int | None = None) -> int:
        """PORT, before Slack is reached: GET /healthz in both modes (503 until then); in HTTP mode also
        /slack/events (503 until then, so Slack delivers again) and /metrics. Returns the bound port."""
        if self.settings.socket_mode:
            web_app = build_health_app(health=self.health)
        elif not self.settings.signing_secret:  # `lukas run` stops earlier (Settings.require_slack)
            raise StartupError("HTTP mode needs SLACK_SIGNING_SECRET to verify Slack's requests; it is not set")
        else:
            web_app = build_web_app(
                self.bolt,
                health=self.health,
                signing_secret=self.settings.signing_secret,
                metrics=self.metrics_text,
                direct=self._direct,
            )
            web_app.middlewares.append(readiness_gate(self.connecting))
        self._http = await start_http(web_app, host=host, port=self.settings.port if port is None else port)
        bound = int(self._http.addresses[0][1] if self._http.addresses else self.settings.port)
        if self.settings.socket_mode:
            log.info(
                "health: http://%s:%s/healthz (503 until Slack is reached, or the socket is down > 30 s)", host, bound
            )
        return bound

    async def _direct(self, payload: Any) -> bool:
        """The direct intake once auth.test gave the bot's ids; until then (or without them) Bolt takes the event."""
        return self._intake is not None and await self._intake(payload)

    def _install_retention(self) -> None:
        """The daily erase of message text older than retention.days (on the same APScheduler as the picture)."""
        from apscheduler.triggers.cron import CronTrigger

        hour = self.config.current.retention.hour
        self.images.scheduler.add_job(
            self.retention_once,
            CronTrigger(hour=hour, minute=17, timezone=dt.UTC),
            id="retention",
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=3600,
        )

    async def retention_once(self) -> int:
        """Erase message text past retention.days, in batches between answers; returns how many were erased."""
        retention = self.config.current.retention
        if retention.days is None:
            return 0
        try:
            return await privacy.erase_expired(
                self.services.chat.run_db, days=retention.days, batch_size=retention.batch_size
            )
        except Exception:
            log.exception("retention: erasing old message text failed; it is tried again tomorrow")
            return 0

    def watch_socket(self, probe: Callable[[], Awaitable[bool]]) -> None:
        """Socket Mode: follow the socket's state for /healthz (503 once it has been down longer than 30 s)."""
        assert self.socket_health is not None
        self._background.append(asyncio.create_task(self.socket_health.watch(probe), name="socket-health"))

    async def stop(self, *, drain_seconds: float | None = None) -> None:
        """Stop taking events, let answers in progress finish for the grace period, then hand the unfinished ones
        back (their leases expire at once: another replica, or the next start, answers them with the model) before
        any client is closed. Answers already posting finish; none is turned into a fallback by the shutdown."""
        if self._socket_handler is not None:
            with contextlib.suppress(Exception):
                await self._socket_handler.close_async()
        if self._http is not None:
            await self._http.shutdown()
        replicas = self.config.current.replicas
        grace = replicas.shutdown_grace_seconds if drain_seconds is None else drain_seconds
        try:
            await self.services.chat.shutdown(grace=grace, posting_grace=replicas.posting_grace_seconds)
        except Exception as exc:  # the leases then simply run out: another replica still takes them over
            log.warning(
                "could not hand unfinished answers back (%s); they are taken over when their leases expire",
                type(exc).__name__,
            )
        await self.services.chat.memory.drain(grace)  # summaries being written (a cut one is redone later)
        await self.pictures.drain(grace)
        await self.home.drain()
        await self.channel_check.stop()
        await self.services.gateway.aclose()
        self.images.stop()
        await self.admin.close()
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self._http is not None:
            await self._http.cleanup()
        await self.metrics.save_quietly()  # the final figures, for `lukas stats`
        if self.services.slack.session is not None:
            await self.services.slack.session.close()
        await self.services.close()
        log.info("Lukas stopped")
