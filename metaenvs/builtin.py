"""Registration of the built-in task distributions (imported by ``metaenvs/__init__``)."""

from metaenvs.registration import register

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
    "Control/ClassicControl-v0",
    "metaenvs.control.gym_list:GymEnvList",
    kwargs={"train": ["CartPole-v1", "Acrobot-v1"], "test": ["MountainCar-v0"]},
    description="Gymnasium env ids as tasks: CartPole and Acrobot to train, MountainCar held out",
)
for _shots in (50, 100):
    register(
        f"Synthetic/CosMixture{_shots}shot-v0",
        "metaenvs.synthetic.amaml:CosMixture",
        kwargs={"shots": _shots, "val": _shots},
        description=f"A-MAML CosMixture 2-D regression, {_shots}shot-{_shots}val, 100 train / 100 test",
    )
    register(
        f"Synthetic/Alpine{_shots}shot-v0",
        "metaenvs.synthetic.amaml:Alpine",
        kwargs={"shots": _shots, "val": _shots},
        description=f"A-MAML Alpine 2-D regression, {_shots}shot-{_shots}val, 100 train / 100 test",
    )
register(
    "Synthetic/RotatedHimmelblau-v0",
    "metaenvs.synthetic.himmelblau:RotatedHimmelblau",
    description="CTS toy: 8 shifted, randomly rotated 2-D Himmelblau losses; the model is the point",
)
