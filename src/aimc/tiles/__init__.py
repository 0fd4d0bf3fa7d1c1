"""Crossbar tiles: the one analog read of the package — geometry (:mod:`~aimc.tiles.layout`),
periphery (:mod:`~aimc.tiles.periphery`), IR drop (:mod:`~aimc.tiles.irdrop`), the
batched, tiled MVM (:mod:`~aimc.tiles.crossbar`) and the digit reads of sort-in-memory
arrays (:mod:`~aimc.tiles.sense`)."""
from aimc.tiles.crossbar import ProgrammedTiles, ReadMatrices, encode, mvm, program_tiles
from aimc.tiles.matrices import read_matrices
from aimc.tiles.irdrop import apply_ir_drop, effective_weights, ir_drop_active
from aimc.tiles.layout import TileLayout, programmed_levels, significance, slice_parts
from aimc.tiles.periphery import Periphery, perfect_io_read

__all__ = ["TileLayout", "Periphery", "perfect_io_read", "ProgrammedTiles", "ReadMatrices", "encode", "program_tiles", "read_matrices",
           "mvm", "significance", "slice_parts", "programmed_levels", "apply_ir_drop", "effective_weights", "ir_drop_active"]
