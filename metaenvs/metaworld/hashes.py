"""The split hashes of the registered Meta-World ids (seed 0), as Meta-World 3.1.1 gives them.

``metaenvs.testing.check_task_distribution`` compares a registered id's split hash with the one
recorded here, so an installed Meta-World whose benchmark classes sample other goals (or another
split) fails the conformance check, naming both versions. Regenerate with
``python -m metaenvs.metaworld.hashes`` after checking that the change is Meta-World's own.
"""

from __future__ import annotations

RECORDED_WITH = "3.1.1"

SPLIT_HASHES: dict[str, str] = {
    "MetaWorld/ML1-assembly-v3": "a2eb0e63ce16af9f371238d08d62d46aa87ef41ab053c00825ca909918580b95",
    "MetaWorld/ML1-basketball-v3": "0cf0ec2b97872d5955ad18f0e34e025450dfc4dcc2609698065e39b529eac018",
    "MetaWorld/ML1-bin-picking-v3": "4d01416d7adf6ff0e7dbed9f57d27d8cceccaff69ac2047aab2f97394234e14d",
    "MetaWorld/ML1-box-close-v3": "0bc4bf38d06c7acb4de9f2d2805b8dc1ce028d6b3e276ab2e9ab001453b51935",
    "MetaWorld/ML1-button-press-topdown-v3": "61b2c934dd22541fd998b95a26b86538c41c2c93d5dff9676b62c6eb58fef52f",
    "MetaWorld/ML1-button-press-topdown-wall-v3": "ccf570f04652b522f353ad63cb49b23bffd43085f4756840a854962f1c281150",
    "MetaWorld/ML1-button-press-v3": "b0fb696acd3b77dfbeb96377ebd4bdd94f7a2b09d2d65f53b22988255e5d11db",
    "MetaWorld/ML1-button-press-wall-v3": "a09fd9b4c9397393ff29ab3065510dec9444c62cec580734662b85aba054f107",
    "MetaWorld/ML1-coffee-button-v3": "cc63712b18963e301973ba74f0b86d5283814c3b48f8dbb5c57b739cb025e4aa",
    "MetaWorld/ML1-coffee-pull-v3": "63428445d03734065082037160d1dba518051e4dda1b44d7a221ece8f0873433",
    "MetaWorld/ML1-coffee-push-v3": "720ee893a20d698597018326446ef16c3593238e7018e06000368472fee7fb76",
    "MetaWorld/ML1-dial-turn-v3": "cf74d4efb862b0201e81602f350c4982124a1f747dc8ee30c705b8f4da8f8af7",
    "MetaWorld/ML1-disassemble-v3": "3917a4130084fce5b7d2962df2e00563d37770a43c725b97bdbac8d1c57143e4",
    "MetaWorld/ML1-door-close-v3": "4dad30f4d3e0cb7bf0716152a7a0c9bed50f4dd42a6d1858078b17d673fa116e",
    "MetaWorld/ML1-door-lock-v3": "ae52ed5e083c64c6249c7814b4210df7a83eb082b906d0489758cc973c76d95c",
    "MetaWorld/ML1-door-open-v3": "441dc52b1d0ed1795fff4be7090a1f7f5d9aae2c9e8ea07a6ff1876dbadc2c44",
    "MetaWorld/ML1-door-unlock-v3": "022d6c9dee204440ed59977d220322f01346d2234fc0edaf84c62de97fc0a049",
    "MetaWorld/ML1-drawer-close-v3": "76373516e3ae94fd43800c9fb7fc60636463eead007bf5ca93d8ea4d6eaa57b7",
    "MetaWorld/ML1-drawer-open-v3": "c610b4344cec3ae3c55e59e7551aeab19a96b727d85a1b1e512045536d3a3131",
    "MetaWorld/ML1-faucet-close-v3": "25b4031517fb235bfcb97df663102f8ca3e8c62a242fad3bf1270f9563be5693",
    "MetaWorld/ML1-faucet-open-v3": "822f0cc2386f9802fe5fe1deb161a1edfbc258718b5b16ba3f594f41a510fb15",
    "MetaWorld/ML1-hammer-v3": "5b5770f9bcc0f0baf4806a7dc35ddee1c2a5071ef638e17a2a5c1a19f3285dbb",
    "MetaWorld/ML1-hand-insert-v3": "e99b6873adf39faacf3ee7c07da1af1766fa300924a5fa89fc259a22f61974c5",
    "MetaWorld/ML1-handle-press-side-v3": "632a6ba8a62d74fd4e68ac66eda8fcaa61d4483df5f4a379155830904d982935",
    "MetaWorld/ML1-handle-press-v3": "16c0899cac1d8cd387c19f50cb10e1f5aa5b466c418e89eddb6f3218adb13404",
    "MetaWorld/ML1-handle-pull-side-v3": "2d160fdd8f249094a1f058fda78b5894086713ac951476ae306c9ebe4dc9f95c",
    "MetaWorld/ML1-handle-pull-v3": "ab996014f9d4ca8582f0b4dfe67153d6c59679e8b37a5240d7e06aa3c24f3f5d",
    "MetaWorld/ML1-lever-pull-v3": "dffc85cc26c103ff4279518d04faeffb236e0ac27a1a9a8f1012da911fb1b5a3",
    "MetaWorld/ML1-peg-insert-side-v3": "cc297ea24b629b33df8ca0d7a22604d6c10ca5d83c8c51bcff3bfa5d02917d1d",
    "MetaWorld/ML1-peg-unplug-side-v3": "1f0e1861f027ba8385934da17bfe0e9473f03a8c2d833c2b96c890ee28ff9073",
    "MetaWorld/ML1-pick-out-of-hole-v3": "327ca683ec146c1d85b49ce9acc18ab6c5b00034d40c65bc829374659de13bd3",
    "MetaWorld/ML1-pick-place-v3": "c9a74060be662d36a0029cc25a3b3ecb1b972919041e69ae74dab96f793b7e6f",
    "MetaWorld/ML1-pick-place-wall-v3": "6dd1e005af720eac6ba7e63a94ea261616f291699eedc808118a008786b8e5bf",
    "MetaWorld/ML1-plate-slide-back-side-v3": "e25f9851b26b3841be3745d7595582a18523869c04fa014e3e469375020f1661",
    "MetaWorld/ML1-plate-slide-back-v3": "ebe81ee31172d0b0ef35910a4de4f04852ff6e382b109093bdd170dc4c8af5cf",
    "MetaWorld/ML1-plate-slide-side-v3": "2086cba2949297ecdec3431eaaf6c021b0dd0bebf9173c6e8f08def27fe467b9",
    "MetaWorld/ML1-plate-slide-v3": "cb06996b52e458cb08118f3667b028c1868e0024b3dfdc96c147220deefbcc85",
    "MetaWorld/ML1-push-back-v3": "7b02dcafbd3fce62500c531c19a0598f1abb3bce0e01c8a13c4947ddc48af6d9",
    "MetaWorld/ML1-push-v3": "b2ecf2d645dc2443e5cf1b00399bb7785ea348391b12c5b72328349375e80c09",
    "MetaWorld/ML1-push-wall-v3": "6af93dc7c49cb4c10b64a26a590a63ff651591835b1d287859a920e5e44685d5",
    "MetaWorld/ML1-reach-v3": "11601572dbea5d4b23ffecdf05a752e3d7e7274572baeff519e40e867643861a",
    "MetaWorld/ML1-reach-wall-v3": "e7e96db71849ffa503cd2592e7654dbe1ea19780a0730e560c3aa09c1303dd10",
    "MetaWorld/ML1-shelf-place-v3": "0341ae57b4e0b664c2f73a7889b8f93a16b5823d3d5d9069b3824de25471412e",
    "MetaWorld/ML1-soccer-v3": "a2c1945bda7e97c1e934ef769ac09a7648b3a6fd34dc9441423ba4e00cbba681",
    "MetaWorld/ML1-stick-pull-v3": "1bcd9025752fcf7ebdbb3fcd0c22ce6cb39c67c8a4ea2e33badaa09708f0fa62",
    "MetaWorld/ML1-stick-push-v3": "6e9d484c504644806e16ca7380715dd7c3ee19ddb576bd4f2a99065f70594430",
    "MetaWorld/ML1-sweep-into-v3": "14e5b72137bf556e9df2dc794f00fdd01134f84fd33541b60ebd4d84e83896ee",
    "MetaWorld/ML1-sweep-v3": "0eb7b9fe2d8ff2960454dad456c852a5a5f488db5441ec58139ee139c6fdb8de",
    "MetaWorld/ML1-window-close-v3": "e1fa127375f6c3845867cae6cf9668e11af4ffb9868e559ba417c8b515c4fc55",
    "MetaWorld/ML1-window-open-v3": "ca761f4e999c6a7a33ccd558dc3ca7f12e33e946aa0877413b14b3f2ad88cb34",
    "MetaWorld/ML10-v3": "0a24f71333fa34fd3749df032ef1f2bdb401d8b28d532127baf29d1870a71eeb",
    "MetaWorld/ML45-v3": "d725e3850fe7d99b1068c6fa78e802bf9db210591a342c759cb0b844672e28ef",
}


def _main() -> None:  # pragma: no cover - a maintenance command
    import metaenvs

    for dist_id in sorted(i for i in metaenvs.registry if i.startswith("MetaWorld/")):
        print(f'    "{dist_id}": "{metaenvs.make(dist_id).split_hash()}",', flush=True)


if __name__ == "__main__":
    _main()
