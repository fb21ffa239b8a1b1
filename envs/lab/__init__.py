"""DMLab-style 3D worlds: a batched first-person raycaster, rooms and mazes, two tasks.

:class:`LabBatch` is the batched core (the API of :class:`envs.breakout.BreakoutBatch`, so the
adapters of :mod:`envs.adapters` serve it unchanged); ``reprl/LabCollect-v0`` and
``reprl/LabNavigate-v0`` (:mod:`envs.lab.family`) build it. Maps: :mod:`envs.lab.maps`; looks
and domain splits: :mod:`envs.lab.domains`; the renderer: :mod:`envs.lab.render`.
"""

from envs.lab.domains import LAB_DOMAINS, LAB_SPLITS, LabDomains, ObjectLook, RoomLook
from envs.lab.family import LAB, LAB_IDS, make_lab_batch
from envs.lab.lab import ACTIONS, FACTOR_NAMES, TASKS, LabBatch
from envs.lab.maps import GridMap, maze_text, navigate_layouts, parse_map, room_text

__all__ = [
    "ACTIONS",
    "FACTOR_NAMES",
    "LAB",
    "LAB_DOMAINS",
    "LAB_IDS",
    "LAB_SPLITS",
    "TASKS",
    "GridMap",
    "LabBatch",
    "LabDomains",
    "ObjectLook",
    "RoomLook",
    "make_lab_batch",
    "maze_text",
    "navigate_layouts",
    "parse_map",
    "room_text",
]
