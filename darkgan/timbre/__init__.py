"""Generative timbre spaces: a VAE over spectral frames whose latent distances follow listeners'
dissimilarity ratings (Esling, Chemla-Romeu-Santos, Bitton, "Generative timbre spaces:
regularizing variational auto-encoders with perceptual metrics", DAFx 2018).

Stages (data flows one way): :mod:`.ratings` (the rated dissimilarities, validated) ->
:mod:`.frontends` (STFT, mel, constant-Q, NSGT analysis and their inverses) -> :mod:`.data`
(SoundFont renders of the rated instruments through :mod:`darkgan.data.render`) ->
:mod:`.model` (the pitch-conditioned VAE and the perceptual regulariser) -> :mod:`.train` ->
:mod:`.space` (the Python API: encode, map, path, synth) -> :mod:`.synthesis` (real notes moved in
the space: synthesis of latent points and paths) and :mod:`.explore` (maps, descriptor-based
synthesis, topology, the app pad).
See docs/timbre.md.
"""


def pick(table: dict, name: str, what: str):
    """``table[name]()`` (a registry of factories), or a one-line error listing the choices.

    Raises:
        darkgan.errors.DarkGANError: ``name`` not in ``table``.
    """
    from darkgan.errors import DarkGANError

    if name not in table:
        raise DarkGANError(f"unknown {what} {name!r}; choose one of {', '.join(table)}")
    return table[name]()
