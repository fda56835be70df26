"""Registration of the built-in task distributions (imported by ``metaenvs/__init__``)."""

from metaenvs.registration import register, registry

register(
    "Synthetic/Sinusoid-v0",
    "metaenvs.synthetic.sinusoid:SinusoidRegression",
    description="MAML sinusoid regression, 10 shots, A in [0.1, 5], phase in [0, pi]",
)
register(
    "Control/CartPolePhysics-v0",
    "metaenvs.control.physics:CartPolePhysics",
    description="CartPole-v1 with pole length/mass, cart mass and force varied; disjoint split ranges",
)
register(
    "Control/PendulumPhysics-v0",
    "metaenvs.control.physics:PendulumPhysics",
    description="Pendulum-v1 with gravity, mass and length varied; disjoint split ranges",
)
register(
    "Control/ClassicControl-v1",
    "metaenvs.control.gym_list:GymEnvList",
    kwargs={"train": ["CartPole-v1", "Acrobot-v1"], "test": ["MountainCar-v0"]},
    description="Gymnasium env ids as tasks: CartPole, Acrobot to train, MountainCar held out",
)
for _shots in (50, 100):
    register(
        f"Synthetic/CosMixture{_shots}shot-v0",
        "metaenvs.synthetic.amaml:CosMixture",
        kwargs={"shots": _shots, "query": _shots},
        description=f"A-MAML CosMixture 2-D regression, {_shots} shots, {_shots} query, 100 train / 100 test",
    )
    register(
        f"Synthetic/Alpine{_shots}shot-v0",
        "metaenvs.synthetic.amaml:Alpine",
        kwargs={"shots": _shots, "query": _shots},
        description=f"A-MAML Alpine 2-D regression, {_shots} shots, {_shots} query, 100 train / 100 test",
    )
register(
    "Synthetic/RotatedHimmelblau-v0",
    "metaenvs.synthetic.himmelblau:RotatedHimmelblau",
    description="CTS toy: 8 shifted, randomly rotated 2-D Himmelblau losses; the model is the point",
)
register(
    "Vision/OmniglotAlphabets-v0",
    "metaenvs.vision.omniglot:OmniglotAlphabets",
    description="Leap's Omniglot: alphabet = 20-way task, 15 train / 5 test per class, 10 listed test sets",
)
for _way, _shot in ((5, 1), (5, 5), (20, 1), (20, 5)):
    register(
        f"Vision/Omniglot{_way}way{_shot}shot-v0",
        "metaenvs.vision.omniglot:OmniglotEpisodes",
        kwargs={"ways": _way, "shots": _shot, "query": 15 if _way == 5 else 5},
        description=f"Omniglot {_way}-way {_shot}-shot episodes; background/evaluation alphabets; rotations",
    )
    register(
        f"Vision/OmniglotVinyals{_way}way{_shot}shot-v0",
        "metaenvs.vision.omniglot:OmniglotEpisodes",
        kwargs={"ways": _way, "shots": _shot, "query": 15, "class_split": "vinyals", "eval_episodes": 600},
        description=f"Omniglot {_way}-way {_shot}-shot episodes, Vinyals split (1,200 / 423 characters "
        "x 4 rotations), 600 test episodes",
    )
register(
    "Vision/MultiCV-v0",
    "metaenvs.vision.datasets_as_tasks:MultiCV",
    description="Data set as task (MNIST, Fashion-MNIST, KMNIST, SVHN, CIFAR-10/100); CIFAR-10 held out",
)
for _name, _cls, _what in (
    ("CIFARFS", "CIFARFS", "CIFAR-FS (64 / 16 / 20 CIFAR-100 classes)"),
    ("FC100", "FC100", "FC100 (CIFAR-100 by superclass: 60 / 20 / 20 classes)"),
):
    for _shot in (1, 5):
        register(
            f"Vision/{_name}5way{_shot}shot-v0",
            f"metaenvs.vision.episodes:{_cls}",
            kwargs={"ways": 5, "shots": _shot, "query": 15},
            description=f"{_what} 5-way {_shot}-shot episodes, 32x32, 600 test episodes",
        )
for _held in ("mnist", "cifar10", "digits"):  # the pool whose files ship with the suite or scikit-learn
    register(
        f"Vision/MultiCVLocal_{_held}-v0",
        "metaenvs.vision.datasets_as_tasks:MultiCV",
        kwargs={"datasets": ["mnist", "cifar10", "digits"], "held_out": _held, "filters": 32},
        description=f"Multi-CV leave-one-out on MNIST, CIFAR-10, digits; {_held} held out; 32-filter conv4",
    )
for _name, _cls in (
    ("Jester1", "Jester1"),
    ("MovieLens100K", "MovieLens100K"),
    ("MovieLens1M", "MovieLens1M"),
):
    for _shots, _val in ((10, 15), (20, 30)):
        register(
            f"Ratings/{_name}_{_shots}shot{_val}val-v0",
            f"metaenvs.ratings:{_cls}",
            kwargs={"shots": _shots, "query": _val},
            description=f"A-MAML ratings: a user per task, top-100 items, {_shots} shots, {_val} query",
        )

from metaenvs.atari import games as _atari  # noqa: E402  (plain lists; ale-py loads on make)
from metaenvs.metaworld.names import ML1_ENVS as _ML1_ENVS  # noqa: E402  (plain names; metaworld loads on make)

register(
    "Atari/LeapPool-v0",
    "metaenvs.atari.distribution:AtariGames",
    kwargs={
        "train": [g for g in _atari.LEAP_POOL if g not in _atari.HELD_OUT],
        "test": list(_atari.HELD_OUT),
    },
    description="Leap's pool: ALE games with <= 10 minimal actions; Breakout and SpaceInvaders held out",
)
register(
    "Atari/LeapSeen-v0",
    "metaenvs.atari.distribution:AtariGames",
    kwargs={"test": list(_atari.SEEN_IN_PRETRAINING)},
    description="Evaluation only: AirRaid, UpNDown, WizardOfWor (in Leap's pretraining pool)",
)
register(
    "Atari/LeapLargeActions-v0",
    "metaenvs.atari.distribution:AtariGames",
    kwargs={"test": list(_atari.LARGE_ACTION_SETS)},
    description="Evaluation only: Alien, Gravitar, RoadRunner, KungFuMaster, Krull (> 10 actions)",
)
register(
    "Atari/Atari57-v0",
    "metaenvs.atari.distribution:AtariGames",
    kwargs={"train": [g for g in _atari.ATARI_57 if g not in _atari.HELD_OUT], "test": list(_atari.HELD_OUT)},
    description="The Atari-57 benchmark games; Breakout and SpaceInvaders held out",
)

for _name in ("LeapPool", "Atari57"):  # the Atari-100k tier of the two held-out lists
    register(
        f"Atari/{_name}-100k-v0",
        "metaenvs.atari.distribution:AtariGames",
        kwargs={**registry[f"Atari/{_name}-v0"].kwargs, "tier": "atari100k"},
        description=f"{_name} at Atari-100k: 100k agent steps (400k frames) per game, native A2C",
    )

# Meta-World v3 (the `metaworld` extra): each id's version follows Meta-World's env version.
for _env in _ML1_ENVS:
    register(
        f"MetaWorld/ML1-{_env}",
        "metaenvs.metaworld.distribution:MetaWorldML",
        kwargs={"benchmark": "ML1", "env_name": _env},
        description=f"Meta-World ML1 {_env}: 50 train goals, 10 of its held-out goals (seeded by Meta-World)",
    )
register(
    "MetaWorld/ML10-v3",
    "metaenvs.metaworld.distribution:MetaWorldML",
    kwargs={"benchmark": "ML10"},
    description="Meta-World ML10: 10 train classes x 50 goals; 5 held-out classes x 2 goals",
)
register(
    "MetaWorld/ML45-v3",
    "metaenvs.metaworld.distribution:MetaWorldML",
    kwargs={"benchmark": "ML45"},
    description="Meta-World ML45: 45 train classes x 50 goals; 5 held-out classes x 2 goals",
)
