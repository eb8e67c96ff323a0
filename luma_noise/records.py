"""What a noise did to one example, kept on the example."""

import dataclasses
import json


@dataclasses.dataclass(frozen=True)
class NoiseRecord:
    """One applied noise: modality ("image", "audio", "text"), its name and the parameters actually used."""

    modality: str
    name: str
    params: dict

    def to_feature(self) -> dict:
        """The example's `noise[<modality>]` value: name and JSON-encoded parameters (sorted keys)."""
        return {"name": self.name, "params": json.dumps(self.params, sort_keys=True)}
