"""The Pipeline: gateway receptions in, assigned and stored readings out.

Stages, one direction: the network server (admission, multi-gateway dedupe, replay
protection), decryption and decoding (OMS modes 5/7 and ELL for wireless M-Bus, the
LoRaWAN session keys and the EN 13757-3 records codec for LoRaWAN payloads), the typed
device model, the assignment to building and unit by the time of the transmission,
and the store. Every reception ends somewhere: in an uplink (as its first copy, a merged
copy or a late copy) or in the rejected stream with its reason, and the statistics count
each of them.

Writes are idempotent (natural keys in the store, a stable content key per uplink), so
feeding the same input again, after a crash or by mistake, changes nothing.
"""

from __future__ import annotations

import collections
import datetime as dt
import itertools
import logging
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple, cast

import msgspec
import numpy as np

from minolcore._batch_readings import UplinkPlaces, merge_reading_rows
from minolcore._layout_plans import ReadingTimes
from minolcore._model import Record
from minolcore.devices import DeviceReading, ProfileRegistry, model_from_records
from minolcore.devices.models import DeviceIdentity
from minolcore.errors import MinolcoreError
from minolcore.keys import KeyStore
from minolcore.lorawan import JoinServer, Session, parse_phy
from minolcore.network import (
    GroupedBatch,
    JoinAcceptance,
    NetworkServer,
    NetworkState,
    NetworkUplink,
    ReceptionInfo,
    RejectReason,
    reception_info,
)
from minolcore.pipeline_fast import (
    FastRecords,
    LayoutLearner,
    fast_records,
    memoisable_profile,
    scan_uplink_frames,
)
from minolcore.pipeline_fast import (
    minute as _minute,
)
from minolcore.readings import reading_rows
from minolcore.reception import Radio, Reception, ReceptionColumns
from minolcore.secret import AesKey
from minolcore.site import Assignment, LoRaWANAddress, SiteRegistry, WMBusAddress
from minolcore.store.base import (
    DeviceRow,
    ReadingBlock,
    ReadingRow,
    ReadingValues,
    ReceptionRow,
    RejectedRow,
    StatusEventRow,
    Store,
    StoreBatch,
    UplinkBlock,
    UplinkValues,
    content_key,
)
from minolcore.store.receptions import EncodedReceptions, encode_reception_columns, encode_receptions
from minolcore.wmbus.compact import FormatSignatureCache
from minolcore.wmbus.frame import CRCModeName, parse_frame
from minolcore.wmbus.headers import Address
from minolcore.wmbus.link import decode_id, decode_manufacturer, encode_manufacturer
from minolcore.wmbus.records import DecodedRecords, decode_records
from minolcore.wmbus.security import OMSKey
from minolcore.wmbus.telegram import Telegram, decode_batch

__all__ = ["Pipeline", "PipelineResult", "PipelineStats", "StoredUplink"]

logger = logging.getLogger(__name__)

# Status fields that name a fault when true (false for the "sufficient"/"mounted" ones).
_FAULTS_WHEN_TRUE = (
    "battery_low",
    "permanent_error",
    "temporary_error",
    "tamper",
    "removed",
    "leak",
    "backflow",
    "burst",
    "smoke_chamber_soiled",
    "obstacle_detected",
)
_FAULTS_WHEN_FALSE = {"battery_sufficient": "battery_low", "mounted": "not_mounted"}


class PipelineStats(Record):
    """What the pipeline has seen since it started (counts of receptions, uplinks and rows)."""

    received: int = 0
    uplinks: int = 0
    duplicates_merged: int = 0
    late_receptions: int = 0
    rejected: dict[str, int] = msgspec.field(default_factory=dict)
    decoded: int = 0
    not_decoded: dict[str, int] = msgspec.field(default_factory=dict)
    unassigned: int = 0
    # Values read from telegrams: a due-date value sent all year counts once per telegram.
    readings: int = 0
    devices_by_kind: dict[str, int] = msgspec.field(default_factory=dict)
    # LoRaWAN JoinRequests accepted (each answered with a JoinAccept).
    joins: int = 0


class StoredUplink(Record):
    """One decoded uplink as the applications see it (callbacks)."""

    uplink_key: str
    device_uid: str
    model: DeviceReading | None
    assignment: Assignment | None
    receptions: tuple[ReceptionInfo, ...]
    errors: tuple[str, ...] = ()


class PipelineResult(Record):
    """The outcome of one :meth:`Pipeline.feed` call.

    ``batch`` is what was handed to the store. On the columnar path (``models=False``) its
    reading values are already merged as the store keeps them: one row per reading key,
    the first in batch order with the smallest uplink key of its repeats. ``joins``: the
    LoRaWAN JoinRequests accepted, each with the JoinAccept the application sends back
    through its gateway (see :func:`minolcore.adapters.semtech.join_accept_txpk`)."""

    uplinks: tuple[StoredUplink, ...]
    batch: StoreBatch
    joins: tuple[JoinAcceptance, ...] = ()


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def _lorawan_site_address(device_id: str) -> LoRaWANAddress:
    """The site address of a LoRaWAN device named by its DevEUI (16 hex digits, OTAA) or
    DevAddr (8, ABP)."""
    if len(device_id) == 16:
        return LoRaWANAddress.of(dev_eui=device_id)
    return LoRaWANAddress.of(dev_addr=device_id)


def _wmbus_uid(address: Address) -> str:
    return (
        f"wmbus:{decode_manufacturer(address.manufacturer_code)}:{decode_id(address.id_value)}"
        f":{address.version:02X}:{address.device_type:02X}"
    )


class Pipeline:
    """Gateway traffic to stored readings, with statistics and application callbacks.

    ``site`` says which devices exist and where; ``keys`` holds their keys; ``store``
    receives every batch (None: nothing is stored, results are only returned). Windows are
    in ms of event time; copies that arrive up to ``max_lateness_ms`` after newer traffic
    (collectors uploading late) still merge into their uplink, and older ones still land
    on the same stored uplink through its content key. ``on_uplink`` is called with every
    decoded uplink, ``on_rejected`` with every rejected reception and ``on_join`` with every
    accepted LoRaWAN JoinRequest (its JoinAccept to send), after the batch was stored.
    OTAA devices (a DevEUI in the site, its AppKey in the key store) join network
    ``lorawan_net_id`` (24 bits); their sessions live in the network state
    (:meth:`snapshot`), their keys derived again from the AppKeys on restore.
    ``gateway_crc`` says per gateway whether it hands over wireless M-Bus frames with their
    CRCs (see :class:`~minolcore.network.NetworkServer`); by default the site's declarations
    for the admitted gateways.
    """

    def __init__(
        self,
        *,
        site: SiteRegistry,
        keys: KeyStore,
        store: Store | None,
        gateways: Iterable[str],
        fingerprint_key: bytes | None = None,
        wmbus_window_ms: int = 300_000,
        lorawan_window_ms: int = 1_000,
        max_lateness_ms: int = 86_400_000,
        profiles: ProfileRegistry | None = None,
        signatures: FormatSignatureCache | None = None,
        on_uplink: Callable[[StoredUplink], None] | None = None,
        on_rejected: Callable[[RejectedRow], None] | None = None,
        state: NetworkState | None = None,
        gateway_crc: Mapping[str, CRCModeName] | None = None,
        on_join: Callable[[JoinAcceptance], None] | None = None,
        lorawan_net_id: int = 0,
    ) -> None:
        self.site = site
        self.keys = keys
        self.store = store
        self.profiles = profiles or ProfileRegistry()
        self.signatures = signatures if signatures is not None else FormatSignatureCache()
        self.on_uplink = on_uplink
        self.on_rejected = on_rejected
        self.on_join = on_join
        self._gateways = tuple(dict.fromkeys(gateways))
        exact, any_version, sessions, app_keys = self._registrations()
        # Always a join server, if with no device: a state restored into it keeps the
        # DevNonces it holds, for a device that comes back.
        join_server = JoinServer(net_id=lorawan_net_id, app_keys=app_keys)
        config: dict[str, Any] = {
            "gateways": self._gateways,
            "gateway_crc": gateway_crc
            if gateway_crc is not None
            else {g: mode for g, mode in site.gateway_crc.items() if g in self._gateways},
            "wmbus_devices": exact,
            "wmbus_meters": any_version,
            "lorawan_devices": sessions,
            "join_server": join_server,
            "fingerprint_key": fingerprint_key,
            "wmbus_window_ms": wmbus_window_ms,
            "lorawan_window_ms": lorawan_window_ms,
            # Copies that collectors upload up to max_lateness_ms late still merge.
            "wmbus_retention_ms": wmbus_window_ms + max_lateness_ms,
        }
        self.network = NetworkServer(**config) if state is None else NetworkServer.restore(state, **config)
        self._gateway_crc = self.network.gateway_crc
        self._stats = PipelineStats()
        # Validated site addresses per meter identity (building one costs more than the lookup).
        self._site_addresses: dict[DeviceIdentity, WMBusAddress] = {}
        # meter uid -> (site, its revision, span start and end in s, the assignment in that span)
        self._assignment_spans: dict[str, tuple[SiteRegistry, int, float, float, Assignment | None]] = {}
        # Columnar path: per address (uid, identity, memoisable profile or None); per
        # (profile, status inputs) the kind and the faults of the model they give.
        self._fast_devices: dict[Address, tuple[str, DeviceIdentity, object | None]] = {}
        self._fast_status: dict[tuple[object, tuple[Any, ...]], tuple[str, tuple[tuple[str, str], ...]]] = {}
        self._fast_device_rows: dict[tuple[str, str], DeviceRow] = {}
        self._layouts = LayoutLearner(self.signatures)
        self._oms_keys: dict[Address, OMSKey | None] = {}

    # -- configuration ---------------------------------------------------------------------

    def _registrations(
        self,
    ) -> tuple[list[Address], list[tuple[int, int]], list[Session], dict[str, AesKey]]:
        """The site's devices as the network stage admits them: wireless M-Bus addresses
        (exact, and by manufacturer and ID alone), ABP sessions, and the AppKeys of the
        OTAA devices by DevEUI (devices without keys are left out: nothing of theirs opens)."""
        exact: list[Address] = []
        any_version: list[tuple[int, int]] = []
        sessions: list[Session] = []
        app_keys: dict[str, AesKey] = {}
        for installation in self.site.installations():
            address = installation.address
            if isinstance(address, WMBusAddress):
                code, id_value = encode_manufacturer(address.manufacturer), int(address.id, 16)
                if address.version is None or address.device_type is None:
                    any_version.append((code, id_value))
                else:
                    exact.append(
                        Address(
                            manufacturer_code=code,
                            id_value=id_value,
                            version=address.version,
                            device_type=address.device_type,
                        )
                    )
            elif isinstance(address, LoRaWANAddress) and address.dev_addr is not None:
                keys = self.keys.lorawan_session_keys(address.dev_addr)
                if keys is not None:
                    sessions.append(Session(address.dev_addr, keys.nwk_s_key, keys.app_s_key))
            elif isinstance(address, LoRaWANAddress) and address.dev_eui is not None:
                app_key = self.keys.app_key(address.dev_eui)
                if app_key is not None:
                    app_keys[address.dev_eui] = app_key
        return exact, any_version, sessions, app_keys

    # -- feeding ---------------------------------------------------------------------------

    def feed(self, receptions: Sequence[Reception], *, models: bool = True) -> PipelineResult:
        """Run one batch of receptions through every stage and store the result.

        ``models=False`` (and no ``on_uplink`` callback) takes the columnar path: the same
        rows are stored, but typed models are built only where the rows need them, and the
        result lists no uplinks.
        """
        if not models and self.on_uplink is None:
            return self._feed_columns(receptions)
        grouped = self.network.feed_grouped(receptions)
        network = self.network.objects(grouped)
        wmbus = [u for u in network.uplinks if u.radio is Radio.WMBUS]
        lorawan = [u for u in network.uplinks if u.radio is Radio.LORAWAN]
        telegrams = self._decode_wmbus(wmbus)
        decoded: list[tuple[NetworkUplink, str, DeviceIdentity | None, Any, int | None, tuple[str, ...]]] = []
        for uplink, telegram in zip(wmbus, telegrams, strict=True):
            decoded.append(self._wmbus_item(uplink, telegram))
        for uplink in lorawan:
            decoded.append(self._lorawan_item(uplink))
        rows = _Rows()
        uplinks_out: list[StoredUplink] = []
        for uplink, device_uid, identity, records, sts, errors in decoded:
            stored = self._store_uplink(rows, uplink, device_uid, identity, records, sts, errors)
            uplinks_out.append(stored)
        batch = self._finish(rows, grouped)
        if self.on_uplink is not None:
            for item in uplinks_out:
                self.on_uplink(item)
        return PipelineResult(uplinks=tuple(uplinks_out), batch=batch, joins=grouped.joins)

    def _finish(self, rows: _Rows, grouped: GroupedBatch) -> StoreBatch:
        """Late copies and rejections into the rows, the batch into the store, the counts into
        the statistics, the rejections to their callback; returns what was written."""
        self._late_receptions(rows, grouped)
        rejected = self._rejected_rows(rows, grouped)
        batch = rows.batch()
        if self.store is not None:
            self.store.write(batch)
        late = grouped.late_copies()
        update = {
            "received": len(grouped.receptions),
            "uplinks": len(grouped.openers),
            "duplicates_merged": len(grouped.copy_rows) - len(grouped.openers) + late,
            "late_receptions": late,
            "readings": rows.values_read,
            "joins": len(grouped.joins),
        }
        self._stats = self._merge_stats(self._stats, update, rows, rejected)
        if self.on_rejected is not None:
            for row in rejected:
                self.on_rejected(row)
        if self.on_join is not None:
            for join in grouped.joins:
                self.on_join(join)
        return batch

    def _feed_columns(self, receptions: Sequence[Reception]) -> PipelineResult:
        grouped = self.network.feed_grouped(receptions)
        copies = _Copies(grouped, self.network.gateway_ids)
        decoded = grouped.decoded  # the LoRaWAN uplinks, by opening reception
        if len(grouped.opened.rows) == len(grouped.openers):
            # Every uplink wireless M-Bus (both lists ascend): the opened columns are theirs.
            wmbus, lorawan = list(range(len(grouped.openers))), []
            frames, meters = grouped.opened.frames, grouped.opened.devices
        else:
            wmbus = [p for p, row in enumerate(grouped.openers) if row not in decoded]
            lorawan = [p for p, row in enumerate(grouped.openers) if row in decoded]
            openers = list(map(grouped.openers.__getitem__, wmbus))
            frames = list(map(grouped.frames.__getitem__, openers))
            meters = list(map(grouped.devices.__getitem__, openers))
        rows = _Rows()
        # Per meter once: its key and its device (a batch holds a few uplinks of each meter).
        key_of = {}
        device_of = {}
        mappable = {}
        for meter in set(meters):
            address = self.network.meter(meter)[1]
            key_of[meter] = self._cached_key(address)
            device_of[meter] = self._fast_device(address)
            mappable[meter] = device_of[meter][2] is not None
        keys = list(map(key_of.__getitem__, meters))
        devices = list(map(device_of.__getitem__, meters))
        first_times = copies.first_received_at[wmbus].tolist()
        scanned = scan_uplink_frames(frames)
        eligible = np.fromiter(map(mappable.__getitem__, meters), dtype=np.bool_, count=len(wmbus))
        read = fast_records(scanned, keys, eligible, first_times, self.signatures, frames)
        fast = read.records
        if None in fast:
            slow = {i: copies.uplink(self.network, wmbus[i]) for i, item in enumerate(fast) if item is None}
            telegrams = self._slow_telegrams(slow, fast, read.dependent.tolist())
        else:  # the columnar path read every telegram: only its layouts are learnt
            slow, telegrams = {}, {}
            self._layouts.learn_all(cast(list[FastRecords], fast))
        stored = copies.encoded()
        # Per uplink (wireless M-Bus ones by their index in wmbus, then LoRaWAN ones) where the
        # rows of its reading columns go, and the uplink of every row appended one by one.
        places = UplinkPlaces.unplaced(len(wmbus) + len(lorawan))
        appended: list[int] = []
        read_batch = _FastBatch(frames, first_times, devices, fast, wmbus, read.times)
        start = 0  # of the run of consecutive uplinks the columnar path read
        for i, uplink in slow.items():  # in batch order
            self._store_fast_run(rows, start, i, read_batch, places, appended)
            start = i + 1
            before = len(rows.reading_values)
            self._store_uplink(rows, *self._wmbus_item(uplink, telegrams[i]))
            appended.extend(itertools.repeat(i, len(rows.reading_values) - before))
        self._store_fast_run(rows, start, len(fast), read_batch, places, appended)
        rows.uplink_blocks.append(rows.fast_uplinks.block(stored))
        for i, position in enumerate(lorawan, start=len(wmbus)):
            before = len(rows.reading_values)
            self._store_uplink(rows, *self._lorawan_item(copies.uplink(self.network, position)))
            appended.extend(itertools.repeat(i, len(rows.reading_values) - before))
        block, read_from_columns = merge_reading_rows(
            read.columns, read.times, places, rows.reading_values, appended
        )
        rows.reading_values = []
        rows.reading_blocks.append(block)
        rows.values_read += read_from_columns
        return PipelineResult(uplinks=(), batch=self._finish(rows, grouped), joins=grouped.joins)

    def _cached_key(self, address: Address | None) -> OMSKey | None:
        if address is None:
            return None
        if address not in self._oms_keys:
            self._oms_keys[address] = self._key_for(address)
        return self._oms_keys[address]

    def _fast_device(self, address: Address) -> tuple[str, DeviceIdentity, object | None]:
        found = self._fast_devices.get(address)
        if found is None:
            identity = DeviceIdentity(
                manufacturer=decode_manufacturer(address.manufacturer_code),
                id=decode_id(address.id_value),
                version=address.version,
                device_type=address.device_type,
            )
            found = (_wmbus_uid(address), identity, memoisable_profile(self.profiles, identity))
            self._fast_devices[address] = found
        return found

    def _slow_telegrams(
        self, wmbus: Mapping[int, NetworkUplink], fast: list[FastRecords | None], dependent: list[bool]
    ) -> dict[int, Telegram]:
        """Telegram objects of the uplinks the columnar path left, with the signature cache
        learning every full frame in batch order, as the object path does.

        Telegrams that do not read the cache are decoded in one batch, those that do (compact
        frames, hidden layers) one by one after everything before them was learnt.
        """
        out: dict[int, Telegram] = {}
        pending: list[int] = []
        learnt: list[int] = []  # fast telegrams since the last flush, in order

        def flush() -> None:
            if pending:
                decoded = self._decode_wmbus([wmbus[i] for i in pending])
                out.update(zip(pending, decoded, strict=True))
                self._layouts.forget()
                if learnt:
                    # Learn again in batch order, so the cache ends as the object path leaves it.
                    order = sorted(pending + learnt)
                    for i in order:
                        item = fast[i]
                        if item is not None:
                            self._layouts.learn(item)
                        else:
                            self._relearn(out[i])
            else:
                self._layouts.learn_all(cast(list[FastRecords], list(map(fast.__getitem__, learnt))))
            pending.clear()
            learnt.clear()

        for i, item in enumerate(fast):
            if item is not None:
                learnt.append(i)
            elif dependent[i]:
                flush()
                out[i] = self._decode_wmbus([wmbus[i]])[0]
                self._layouts.forget()
            else:
                pending.append(i)
        flush()
        return out

    def _relearn(self, telegram: Telegram) -> None:
        if telegram.compact or not telegram.records or telegram.signature is None:
            return
        layout = tuple(record.dif + record.vif for record in telegram.records)
        try:
            if self.signatures.layout(telegram.signature) == layout:
                return
        except MinolcoreError:
            pass
        self.signatures.learn(DecodedRecords(records=telegram.records, signature=telegram.signature))

    def _store_fast_run(
        self,
        rows: _Rows,
        start: int,
        stop: int,
        batch: _FastBatch,
        places: UplinkPlaces,
        appended: list[int],
    ) -> None:
        """The rows of the consecutive wireless M-Bus uplinks ``start`` to ``stop`` - 1
        (indexes into ``batch``'s lists and ``places``) that the columnar path read, field by
        field over the whole run: per uplink its key, its uplink row, its status events and
        where its reading columns' rows go (into ``places``); record-by-record rows are
        appended with their uplink in ``appended``. The rows keep batch order, as the
        store's merge needs."""
        if start >= stop:
            return
        # Field by field: slices of the batch's lists, and C-level passes (map) over them.
        items = cast(list[FastRecords], batch.fast[start:stop])
        devices = batch.devices[start:stop]
        received_at = batch.received_at[start:stop]
        uids = list(map(_FIRST, devices))
        run_frames = batch.frames[start:stop]
        keys = list(map(content_key, uids, run_frames))
        at = batch.positions[start:stop]
        read_uplinks = rows.fast_uplinks
        read_uplinks.keys += keys
        read_uplinks.device_uids += uids
        read_uplinks.sizes.extend(map(len, run_frames))
        read_uplinks.at += at
        known = self._fast_status
        # A (kind, faults) pair is never empty: a miss alone builds the model.
        statuses = [
            known.get((device[2], item.status_key)) or self._fast_status_of(device, item, when)
            for device, item, when in zip(devices, items, received_at, strict=True)
        ]
        kinds = list(map(_FIRST, statuses))
        assignments = self._assign_run(received_at, devices)
        places_of = [
            (None, None) if a is None else (a.building.id, None if a.unit is None else a.unit.id)
            for a in assignments
        ]
        places.device_uids[start:stop] = uids
        places.keys[start:stop] = keys
        places.places[start:stop] = places_of
        rows.unassigned += assignments.count(None)
        rows.decoded += stop - start
        counts = rows.kinds
        for kind, n in collections.Counter(kinds).items():
            counts[kind] = counts.get(kind, 0) + n
        # Each meter and kind once, in the order they first come (an uplink of the meter
        # gives its identity: they all have the same).
        seen = rows.device_rows
        for device_key, n in dict(zip(zip(uids, kinds, strict=True), itertools.count())).items():
            if device_key not in seen:
                seen.add(device_key)
                rows.devices.append(self._fast_device_row(device_key, devices[n][1]))
        # A telegram read record by record brings its rows; the rest are in reading columns.
        for n in [n for n, item in enumerate(items) if item.readings]:
            readings = items[n].readings
            building, unit_id = places_of[n]
            rows.values_read += len(readings)
            rows.reading_values.extend([(uids[n], *row, building, unit_id, keys[n]) for row in readings])
            appended.extend(itertools.repeat(start + n, len(readings)))
        faulty = [n for n, status in enumerate(statuses) if status[1]]
        if faulty:
            # The model times as text in one pass (a fault is as common as its meters).
            whens = batch.times.texts([items[n].event_minute for n in faulty])
            rows.status_events.extend(
                [
                    StatusEventRow(device_uid=uids[n], event_time=when, event=fault, detail=detail)
                    for n, when in zip(faulty, whens, strict=True)
                    for fault, detail in statuses[n][1]
                ]
            )

    def _fast_status_of(
        self, device: tuple[str, DeviceIdentity, object | None], item: FastRecords, received_at: float
    ) -> tuple[str, tuple[tuple[str, str], ...]]:
        """The kind and faults (event, detail) of the model that the status inputs of
        ``item`` give for its device's profile, built from its records and remembered for
        the profile and inputs (the caller looks there first)."""
        device_uid, identity, profile = device
        model = model_from_records(
            identity,
            decode_records(item.apl).records,
            item.sts,
            _utc(received_at).isoformat(),
            registry=self.profiles,
        )
        faults = tuple((event.event, event.detail) for event in _status_events(device_uid, model))
        status = self._fast_status[(profile, item.status_key)] = (model.kind, faults)
        return status

    def _fast_device_row(self, device_key: tuple[str, str], identity: DeviceIdentity) -> DeviceRow:
        """The device row of a meter and kind: every uplink repeats it, so it is built once
        (frozen)."""
        found = self._fast_device_rows.get(device_key)
        if found is None:
            device_uid, kind = device_key
            found = self._fast_device_rows[device_key] = DeviceRow(
                device_uid=device_uid,
                radio="wmbus",
                manufacturer=identity.manufacturer,
                meter_id=identity.id,
                version=identity.version,
                device_type=identity.device_type,
                kind=kind,
            )
        return found

    def _assign_run(
        self,
        received_at: Sequence[float],
        devices: Sequence[tuple[str, DeviceIdentity, object | None]],
    ) -> list[Assignment | None]:
        """The assignments of wireless M-Bus uplinks of ``devices``, first heard at
        ``received_at`` (s since the epoch): most fall in their meter's remembered span,
        checked here without a call; the others are looked up and their span remembered."""
        spans = self._assignment_spans
        site = self.site
        revision = site.revision
        out: list[Assignment | None] = []
        for when, device in zip(received_at, devices, strict=True):
            held = spans.get(device[0])
            if held is not None and held[0] is site and held[1] == revision and held[2] <= when < held[3]:
                out.append(held[4])
            else:
                out.append(self._assign_remembering_span(when, device[0], device[1]))
        return out

    def run(self, source: Iterable[Reception], *, batch_size: int = 20_000) -> PipelineStats:
        """Feed a stream of receptions in batches of ``batch_size``; returns the statistics."""
        for chunk in _chunks(source, batch_size):
            self.feed(chunk)
        return self.stats()

    def stats(self) -> PipelineStats:
        """Counts since the pipeline started."""
        return self._stats

    def snapshot(self) -> NetworkState:
        """The network server's state (dedupe windows, counters, OTAA sessions; no keys), for
        a restart."""
        return self.network.snapshot()

    # -- stages ------------------------------------------------------------------------------

    def _key_for(self, address: Address | None) -> OMSKey | None:
        if address is None:
            return None
        return self.keys.oms_key(
            address.manufacturer_code, address.id_value, address.version, address.device_type
        )

    def _decode_wmbus(self, uplinks: list[NetworkUplink]) -> list[Telegram]:
        if not uplinks:
            return []
        keys = [self._key_for(u.address) for u in uplinks]
        # A received copy may still claim an encryption it does not have: no plaintext is
        # accepted where the header announces encryption, unlike decoding stored telegrams.
        return decode_batch(
            [u.frame for u in uplinks], keys, crc="absent", signatures=self.signatures, allow_plaintext=False
        )

    def _wmbus_item(
        self, uplink: NetworkUplink, telegram: Telegram
    ) -> tuple[NetworkUplink, str, DeviceIdentity | None, Any, int | None, tuple[str, ...]]:
        address = uplink.address
        uid = _wmbus_uid(address) if address is not None else f"wmbus:{uplink.device}"
        ok_security = telegram.security is None or telegram.security.status in (
            "decrypted",
            "not_encrypted",
            "already_decrypted",
        )
        if address is None or telegram.link is None or not ok_security:
            status = "frame_error" if telegram.security is None else telegram.security.status
            return uplink, uid, None, (), None, (status, *telegram.errors)
        identity = DeviceIdentity(
            manufacturer=decode_manufacturer(address.manufacturer_code),
            id=decode_id(address.id_value),
            version=address.version,
            device_type=address.device_type,
        )
        return uplink, uid, identity, telegram.records, telegram.tpl_status, telegram.errors

    def _lorawan_item(
        self, uplink: NetworkUplink
    ) -> tuple[NetworkUplink, str, DeviceIdentity | None, Any, int | None, tuple[str, ...]]:
        lora = uplink.lorawan
        device_id = self._lorawan_device_id(lora.dev_addr if lora is not None else uplink.device)
        uid = f"lorawan:{device_id}"
        if lora is None or not lora.payload or lora.fport in (None, 0):
            return uplink, uid, None, (), None, ("no_application_payload",)
        decoded = decode_records(lora.payload)
        identity = self._lorawan_identity(device_id)
        return uplink, uid, identity, decoded.records, None, decoded.errors

    def _lorawan_device_id(self, dev_addr: str) -> str:
        """What names a LoRaWAN device: the DevEUI of an OTAA device (its DevAddr changes
        with every join), the DevAddr of an ABP one."""
        return self.network.dev_eui_of(dev_addr) or dev_addr

    def _lorawan_identity(self, device_id: str) -> DeviceIdentity:
        # LoRaWAN devices have no M-Bus address; the DevEUI or DevAddr stands in for the ID
        # and the installation's kind picks the device type the profiles know.
        kind_types = {
            "heat_cost_allocator": 0x08,
            "heat_meter": 0x04,
            "cold_water_meter": 0x16,
            "warm_water_meter": 0x06,
            "water_meter": 0x07,
            "smoke_detector": 0x1A,
        }
        device_type = 0x00
        for installation in self.site.installations(address=_lorawan_site_address(device_id)):
            device_type = kind_types.get(str(installation.kind), 0x00)
        return DeviceIdentity(manufacturer="LRW", id=device_id, version=0, device_type=device_type)

    def _assign(self, radio: Radio, received_at: float, identity: DeviceIdentity) -> Assignment | None:
        when = _utc(received_at)
        try:
            if radio is Radio.LORAWAN:
                return self.site.assign(_lorawan_site_address(identity.id), when)
            address = self._site_addresses.get(identity)
            if address is None:
                address = WMBusAddress.of(
                    identity.manufacturer, identity.id, identity.version, identity.device_type
                )
                self._site_addresses[identity] = address
            return self.site.assign(address, when)
        except MinolcoreError:
            return None

    def _assign_remembering_span(
        self, when: float, device_uid: str, identity: DeviceIdentity
    ) -> Assignment | None:
        """:meth:`_assign` of a wireless M-Bus uplink of meter ``device_uid`` first heard at
        ``when`` (s since the epoch), remembering for the meter the span of time in which
        the site's answer stays the same (a meter sends for years between swaps), which
        :meth:`_assign_run` checks first."""
        site = self.site
        revision = site.revision
        assignment = self._assign(Radio.WMBUS, when, identity)
        address = self._site_addresses.get(identity)
        if address is None:
            return assignment
        try:
            start, end = self.site.assign_span(address, _utc(when))
        except MinolcoreError:
            return assignment
        # A millisecond inside the span: float seconds and the site's datetimes never disagree there.
        self._assignment_spans[device_uid] = (site, revision, start + 1e-3, end - 1e-3, assignment)
        return assignment

    def _store_uplink(
        self,
        rows: _Rows,
        uplink: NetworkUplink,
        device_uid: str,
        identity: DeviceIdentity | None,
        records: Any,
        sts: int | None,
        errors: tuple[str, ...],
    ) -> StoredUplink:
        key = content_key(device_uid, uplink.frame)
        security = "ok" if identity is not None else (errors[0] if errors else "not_decoded")
        # As value tuples, like the columnar path's, into the same lists: the store keeps the
        # first row of a key in batch order, so both paths' rows must keep that order.
        stored = encode_receptions(_reception_rows(uplink.receptions))
        rows.uplink_values.append((key, device_uid, len(uplink.frame), security, "; ".join(errors), *stored))
        if identity is None:
            rows.not_decoded[security] += 1
            return StoredUplink(
                uplink_key=key,
                device_uid=device_uid,
                model=None,
                assignment=None,
                receptions=uplink.receptions,
                errors=errors,
            )
        received_iso = _utc(uplink.received_at).isoformat()
        model = model_from_records(identity, records, sts, received_iso, registry=self.profiles)
        assignment = self._assign(uplink.radio, uplink.received_at, identity)
        if assignment is None:
            rows.unassigned += 1
        rows.decoded += 1
        rows.kinds[model.kind] = rows.kinds.get(model.kind, 0) + 1
        radio = "lorawan" if uplink.radio is Radio.LORAWAN else "wmbus"
        rows.devices.append(
            DeviceRow(
                device_uid=device_uid,
                radio=radio,
                manufacturer=identity.manufacturer,
                meter_id=identity.id,
                version=identity.version,
                device_type=identity.device_type,
                kind=model.kind,
            )
        )
        building = assignment.building.id if assignment is not None else None
        unit = assignment.unit.id if assignment is not None and assignment.unit is not None else None
        found = reading_rows(
            tuple(records),
            device_uid=device_uid,
            received_at=uplink.received_at,
            uplink_key=key,
            building_id=building,
            unit_id=unit,
        )
        rows.values_read += len(found)
        rows.reading_values.extend(map(_reading_values, found))
        rows.status_events.extend(_status_events(device_uid, model))
        return StoredUplink(
            uplink_key=key,
            device_uid=device_uid,
            model=model,
            assignment=assignment,
            receptions=uplink.receptions,
            errors=errors,
        )

    def _late_receptions(self, rows: _Rows, grouped: GroupedBatch) -> None:
        # A late copy names its uplink by content: its key is derived from the copy itself
        # (late copies are few; remembering every uplink's key for them would cost more).
        for indexes in grouped.late.values():
            for index in indexes:
                reception = grouped.receptions[index]
                key = self._content_key_of(reception)
                if key is None:  # the network stage read it, so this would be a bug: say so
                    logger.warning("a late copy (reception %d of the batch) could not be keyed", index)
                    continue
                rows.late_receptions.append((key, _reception_rows((reception,))[0]))

    def _content_key_of(self, reception: Reception) -> str | None:
        """The content key of the uplink a raw copy belongs to (as :meth:`_store_uplink` makes
        it), its frame read in its gateway's CRC mode as the network stage read it."""
        try:
            if reception.radio is Radio.LORAWAN:
                phy = parse_phy(reception.payload)
                dev_addr = getattr(phy, "dev_addr", None)
                if dev_addr is None:
                    return None
                return content_key(f"lorawan:{self._lorawan_device_id(dev_addr)}", bytes(reception.payload))
            frame = parse_frame(reception.payload, crc=self._gateway_crc.get(reception.gateway_id, "auto"))
        except MinolcoreError:
            return None
        return content_key(_wmbus_uid(frame.meter_address), frame.data)

    def _rejected_rows(self, rows: _Rows, grouped: GroupedBatch) -> list[RejectedRow]:
        out = []
        for item in grouped.rejected:
            reception = item.reception
            bad_time = item.reason is RejectReason.BAD_TIME
            row = RejectedRow(
                gateway_id=reception.gateway_id,
                # An impossible time has no ms to store (NaN, infinity): 0, the time in the detail.
                received_at_ms=0 if bad_time else _ms(reception.received_at),
                reason=str(item.reason),
                payload_hex=reception.payload.hex().upper(),
                detail=f"received_at {reception.received_at!r} s" if bad_time else "",
            )
            out.append(row)
        rows.rejected.extend(out)
        return out

    def _merge_stats(
        self,
        stats: PipelineStats,
        update: collections.Counter[str] | dict[str, int],
        rows: _Rows,
        rejected: list[RejectedRow],
    ) -> PipelineStats:
        reasons = collections.Counter(stats.rejected)
        reasons.update(row.reason for row in rejected)
        not_decoded = collections.Counter(stats.not_decoded)
        not_decoded.update(rows.not_decoded)
        kinds = collections.Counter(stats.devices_by_kind)
        kinds.update(rows.kinds)
        return PipelineStats(
            received=stats.received + update["received"],
            uplinks=stats.uplinks + update["uplinks"],
            duplicates_merged=stats.duplicates_merged + update["duplicates_merged"],
            late_receptions=stats.late_receptions + update["late_receptions"],
            rejected=dict(sorted(reasons.items())),
            decoded=stats.decoded + rows.decoded,
            not_decoded=dict(sorted(not_decoded.items())),
            unassigned=stats.unassigned + rows.unassigned,
            readings=stats.readings + update["readings"],
            devices_by_kind=dict(sorted(kinds.items())),
            joins=stats.joins + update.get("joins", 0),
        )


_FIRST = operator.itemgetter(0)


class _FastBatch(NamedTuple):
    """The wireless M-Bus uplinks of a batch as the columnar path hands them on, each list
    by uplink index."""

    frames: list[bytes]
    #: First copy's reception time, s since the epoch.
    received_at: list[float]
    devices: list[tuple[str, DeviceIdentity, object | None]]
    fast: list[FastRecords | None]
    #: Each uplink's batch position (among the encoded receptions).
    positions: list[int]
    #: The numbers of the batch's reading times (:attr:`FastRecords.event_minute`).
    times: ReadingTimes


class _Copies:
    """The copies of a grouped batch's uplinks (by uplink position): their first time, their
    stored form, and as objects for the uplinks the object path stores."""

    def __init__(self, grouped: GroupedBatch, gateway_ids: Sequence[str]) -> None:
        self.grouped = grouped
        self.gateway_ids = gateway_ids
        receptions = grouped.receptions
        rows = grouped.copy_rows
        uplinks = len(grouped.openers)
        if isinstance(receptions, ReceptionColumns):
            times = receptions.received_at[rows]
            self._rssi = receptions.rssi[rows]
            self._snr = np.full(len(rows), np.nan)
        else:
            copies = [receptions[row] for row in rows.tolist()]
            times = np.array([copy.received_at for copy in copies], dtype=np.float64)
            self._rssi = np.array([copy.rssi for copy in copies], dtype=np.float64)
            self._snr = np.array([copy.snr for copy in copies], dtype=np.float64)
        # An uplink's time is its earliest copy's (s since the epoch), as the object path has it.
        first = np.full(uplinks, np.inf)
        np.minimum.at(first, grouped.copy_uplinks, times)
        self.first_received_at = first
        # Each uplink's copies in batch order, found on the first call of uplink(): only
        # the uplinks the object path stores need them.
        self._order: list[int] | None = None
        self._starts: list[int] = []

    def encoded(self) -> EncodedReceptions:
        """Every uplink's receptions in their stored form."""
        grouped = self.grouped
        rows = grouped.copy_rows
        return encode_reception_columns(
            len(grouped.openers),
            grouped.copy_uplinks,
            grouped.gateway[rows],
            self.gateway_ids,
            grouped.received_ms[rows],
            self._rssi,
            self._snr,
        )

    def uplink(self, network: NetworkServer, position: int) -> NetworkUplink:
        """The uplink at ``position`` as the object path has it."""
        if self._order is None:
            copy_uplinks = self.grouped.copy_uplinks
            counts = np.bincount(copy_uplinks, minlength=len(self.grouped.openers))
            self._starts = np.concatenate(([0], np.cumsum(counts))).tolist()
            self._order = np.argsort(copy_uplinks, kind="stable").tolist()
        start, end = self._starts[position], self._starts[position + 1]
        receptions, rows = self.grouped.receptions, self.grouped.copy_rows
        infos = tuple(reception_info(receptions[int(rows[i])]) for i in self._order[start:end])
        return network.uplink(self.grouped, position, infos)


class _FastUplinks:
    """The uplinks the columnar path read, as their runs come: key, device, frame size (bytes)
    and place among the batch's encoded receptions."""

    __slots__ = ("at", "device_uids", "keys", "sizes")

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.device_uids: list[str] = []
        self.sizes: list[int] = []
        self.at: list[int] = []

    def block(self, stored: EncodedReceptions) -> UplinkBlock:
        """Their block, status "ok" and no decode errors, receptions from ``stored``."""
        at = np.asarray(self.at, dtype=np.int64)
        count = len(self.keys)
        return UplinkBlock(
            uplink_keys=self.keys,
            device_uids=self.device_uids,
            size=np.asarray(self.sizes, dtype=np.int64),
            security_status=["ok"] * count,
            decode_errors=[""] * count,
            first_ms=stored.first[at],
            last_ms=stored.last[at],
            receptions=stored.data,
            offsets=stored.offsets,
            reception_entry=at,
        )


class _Rows:
    """The rows of one batch, collected stage by stage."""

    def __init__(self) -> None:
        self.devices: list[DeviceRow] = []
        self.uplink_values: list[UplinkValues] = []
        self.fast_uplinks = _FastUplinks()
        self.uplink_blocks: list[UplinkBlock] = []
        self.late_receptions: list[tuple[str, ReceptionRow]] = []
        # Fast path: device rows already in the batch.
        self.device_rows: set[tuple[str, str]] = set()  # (device uid, kind)
        self.values_read = 0
        self.reading_values: list[ReadingValues] = []
        self.reading_blocks: list[ReadingBlock] = []
        self.status_events: list[StatusEventRow] = []
        self.rejected: list[RejectedRow] = []
        self.not_decoded: collections.Counter[str] = collections.Counter()
        self.kinds: dict[str, int] = {}
        self.decoded = 0
        self.unassigned = 0
        self.late_unmatched = 0

    def batch(self) -> StoreBatch:
        return StoreBatch(
            devices=self.devices,
            uplink_values=self.uplink_values,
            uplink_blocks=self.uplink_blocks,
            late_receptions=self.late_receptions,
            reading_values=self.reading_values,
            reading_blocks=self.reading_blocks,
            status_events=self.status_events,
            rejected=self.rejected,
        )


_FAULT_FIELDS: dict[str, tuple[tuple[str, str, bool], ...]] = {}


def _fault_fields(kind: type[object]) -> tuple[tuple[str, str, bool], ...]:
    """(field, fault name, value that means the fault) for the fault fields a class has."""
    key = f"{kind.__module__}.{kind.__qualname__}"
    found = _FAULT_FIELDS.get(key)
    if found is None:
        fields = [(name, name, True) for name in _FAULTS_WHEN_TRUE]
        fields += [(name, fault, False) for name, fault in _FAULTS_WHEN_FALSE.items()]
        found = _FAULT_FIELDS[key] = tuple(field for field in fields if hasattr(kind, field[0]))
    return found


def _status_events(device_uid: str, model: DeviceReading) -> list[StatusEventRow]:
    """Faults of a reading as events. A smoke detector also reports the faults that are
    clear (one event "cleared" naming them), because its remote inspection needs the latest
    state."""
    when = _minute(model.reading_time)
    smoke = model.kind == "smoke_detector"
    found: dict[str, bool] = {}
    for source in (getattr(model, "status", None), model):
        if source is None:
            continue
        for name, fault, bad in _fault_fields(type(source)):
            value = getattr(source, name)
            if isinstance(value, bool):
                found[fault] = found.get(fault, False) or value is bad
    events = []
    clear = []
    for name, active in sorted(found.items()):
        if active:
            events.append(StatusEventRow(device_uid=device_uid, event_time=when, event=name))
        elif smoke:
            clear.append(name)
    if clear:
        # One row names every clear fault (not one row each: a detector reports daily).
        events.append(
            StatusEventRow(device_uid=device_uid, event_time=when, event="cleared", detail=" ".join(clear))
        )
    return events


# ReadingRow's fields are the readings table's columns in order (tests/test_store.py checks it).
_reading_values = cast(Callable[[ReadingRow], ReadingValues], msgspec.structs.astuple)


def _reception_rows(receptions: Iterable[ReceptionInfo | Reception]) -> tuple[ReceptionRow, ...]:
    # A list comprehension, not a generator: one frame fewer per copy (millions per run).
    return tuple(
        [
            ReceptionRow(
                gateway_id=reception.gateway_id,
                received_at_ms=round(reception.received_at * 1000),
                rssi=reception.rssi,
                snr=reception.snr,
            )
            for reception in receptions
        ]
    )


def _chunks(source: Iterable[Reception], size: int) -> Iterator[list[Reception]]:
    chunk: list[Reception] = []
    for item in source:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
