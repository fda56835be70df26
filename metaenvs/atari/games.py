"""Atari game lists and the human / random reference scores.

**The Leap pool** (``LEAP_POOL``): every ROM shipped with ale-py 0.12.1 whose *minimal*
action set has at most 10 actions, as in Leap (Flennerhag et al., ICLR 2019, Atari
appendix). Derived once by loading each of the 108 ROM ids of
``ale_py.roms.get_all_rom_ids()`` in ``ale_py.ALEInterface`` and counting
``getMinimalActionSet()``; four multi-player-only ROMs (combat, joust, maze_craze,
warlords) do not load in single-player mode and are left out. 47 games qualify; the list
is frozen here (``tests`` re-derive it when ale-py is installed). The held-out games
Breakout and SpaceInvaders are removed from the training split.

**Reference scores** (``REFERENCE_SCORES``): random and human scores for the 57 games of the
Atari-57 benchmark, carried over from google-deepmind/dqn_zoo ``dqn_zoo/atari_data.py``
(commit 359945d), which collects the published values. Those were measured with up to 30
no-op starts and a 108k-frame cap, **not** with sticky actions, so human-normalised scores
under the Machado et al. (2018) protocol are comparable only approximately. Games without a
reference (``has_reference(game)`` is false) get no normalised score.
"""

from __future__ import annotations

import math

LEAP_POOL = (
    "air_raid", "amidar", "assault", "asterix", "atlantis", "atlantis2", "backgammon", "basic_math",
    "beam_rider", "blackjack", "bowling", "breakout", "carnival", "casino", "crazy_climber", "demon_attack",
    "enduro", "freeway", "frogger", "galaxian", "gopher", "kaboom", "king_kong", "koolaid", "lost_luggage",
    "mr_do", "ms_pacman", "name_this_game", "othello", "pacman", "phoenix", "pong", "pooyan", "qbert",
    "sir_lancelot", "skiing", "space_invaders", "surround", "tetris", "tic_tac_toe_3d", "time_pilot",
    "tutankham", "up_n_down", "video_checkers", "video_chess", "video_pinball", "wizard_of_wor",
)  # fmt: skip
MAX_POOL_ACTIONS = 10
HELD_OUT = ("breakout", "space_invaders")
SEEN_IN_PRETRAINING = ("air_raid", "up_n_down", "wizard_of_wor")
LARGE_ACTION_SETS = ("alien", "gravitar", "road_runner", "kung_fu_master", "krull")
UNLOADABLE_ROMS = ("combat", "joust", "maze_craze", "warlords")

# game: (random score, human score), from dqn_zoo/atari_data.py (see the module docstring).
REFERENCE_SCORES: dict[str, tuple[float, float]] = {
    "alien": (227.8, 7127.7), "amidar": (5.8, 1719.5), "assault": (222.4, 742.0),
    "asterix": (210.0, 8503.3), "asteroids": (719.1, 47388.7), "atlantis": (12850.0, 29028.1),
    "bank_heist": (14.2, 753.1), "battle_zone": (2360.0, 37187.5), "beam_rider": (363.9, 16926.5),
    "berzerk": (123.7, 2630.4), "bowling": (23.1, 160.7), "boxing": (0.1, 12.1), "breakout": (1.7, 30.5),
    "centipede": (2090.9, 12017.0), "chopper_command": (811.0, 7387.8), "crazy_climber": (10780.5, 35829.4),
    "defender": (2874.5, 18688.9), "demon_attack": (152.1, 1971.0), "double_dunk": (-18.6, -16.4),
    "enduro": (0.0, 860.5), "fishing_derby": (-91.7, -38.7), "freeway": (0.0, 29.6),
    "frostbite": (65.2, 4334.7), "gopher": (257.6, 2412.5), "gravitar": (173.0, 3351.4),
    "hero": (1027.0, 30826.4), "ice_hockey": (-11.2, 0.9), "jamesbond": (29.0, 302.8),
    "kangaroo": (52.0, 3035.0), "krull": (1598.0, 2665.5), "kung_fu_master": (258.5, 22736.3),
    "montezuma_revenge": (0.0, 4753.3), "ms_pacman": (307.3, 6951.6), "name_this_game": (2292.3, 8049.0),
    "phoenix": (761.4, 7242.6), "pitfall": (-229.4, 6463.7), "pong": (-20.7, 14.6),
    "private_eye": (24.9, 69571.3), "qbert": (163.9, 13455.0), "riverraid": (1338.5, 17118.0),
    "road_runner": (11.5, 7845.0), "robotank": (2.2, 11.9), "seaquest": (68.4, 42054.7),
    "skiing": (-17098.1, -4336.9), "solaris": (1236.3, 12326.7), "space_invaders": (148.0, 1668.7),
    "star_gunner": (664.0, 10250.0), "surround": (-10.0, 6.5), "tennis": (-23.8, -8.3),
    "time_pilot": (3568.0, 5229.2), "tutankham": (11.4, 167.6), "up_n_down": (533.4, 11693.2),
    "venture": (0.0, 1187.5), "video_pinball": (16256.9, 17667.9), "wizard_of_wor": (563.5, 4756.5),
    "yars_revenge": (3092.9, 54576.9), "zaxxon": (32.5, 9173.3),
}  # fmt: skip
ATARI_57 = tuple(sorted(REFERENCE_SCORES))


def has_reference(game: str) -> bool:
    """Whether ``game`` has published random and human scores."""
    return game in REFERENCE_SCORES


def human_normalized(game: str, raw_score: float) -> float:
    """``(score - random) / (human - random)``; NaN for a game without a reference."""
    if game not in REFERENCE_SCORES:
        return math.nan
    random, human = REFERENCE_SCORES[game]
    return (raw_score - random) / (human - random)


def gym_id(game: str) -> str:
    """Gymnasium id of a ROM id: ``"space_invaders"`` -> ``"ALE/SpaceInvaders-v5"``."""
    from ale_py.registration import rom_id_to_name

    return f"ALE/{rom_id_to_name(game)}-v5"
