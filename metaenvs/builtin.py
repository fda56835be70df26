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
