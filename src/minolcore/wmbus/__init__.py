"""Wireless M-Bus and OMS (EN 13757-4/-3/-7), and wired M-Bus long frames (EN 13757-2)."""

from __future__ import annotations

from minolcore._native import crc16
from minolcore.wmbus.builder import build_frame
from minolcore.wmbus.frame import CRCMode, CRCShape, Frame, FrameStatus, parse_frame
from minolcore.wmbus.headers import Address, AFLHeader, ELLHeader, TPLHeader, TPLKind
from minolcore.wmbus.records import DataRecord, DecodedRecords, decode_records
from minolcore.wmbus.scan import FRAME_INFO_DTYPE, Flag, ScanResult, scan, scan_frames
from minolcore.wmbus.telegram import Telegram, decode, decode_batch
from minolcore.wmbus.wired import WiredFrame, build_wired_frame, parse_wired_frame

__all__ = [
    "FRAME_INFO_DTYPE",
    "AFLHeader",
    "Address",
    "CRCMode",
    "CRCShape",
    "DataRecord",
    "DecodedRecords",
    "ELLHeader",
    "Flag",
    "Frame",
    "FrameStatus",
    "ScanResult",
    "TPLHeader",
    "TPLKind",
    "Telegram",
    "WiredFrame",
    "build_frame",
    "build_wired_frame",
    "crc16",
    "decode",
    "decode_batch",
    "decode_records",
    "parse_frame",
    "parse_wired_frame",
    "scan",
    "scan_frames",
]
