"""Crossbar tiles: weights <-> conductances and the batched, tiled analog MVM."""
from aimc.tiles.crossbar import ProgrammedTiles, ReadMatrices, TileLayout, encode, mvm, program_tiles, read_matrices

__all__ = ["TileLayout", "ProgrammedTiles", "ReadMatrices", "encode", "program_tiles", "read_matrices", "mvm"]
