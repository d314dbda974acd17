"""Value models for simulated devices: pure, seeded, broker-free, so their realism can be unit-tested.

Each model is a small physical state machine advanced by wall-clock time (seconds since the epoch, UTC):
counters only grow, slow quantities follow the day, noise stays inside what a real sensor or meter reports.
"""

from __future__ import annotations

import hashlib
import math
import random
from typing import Literal, Protocol

DeviceKind = Literal['climate', 'ac_meter', 'dc_meter']
Reading = dict[str, float]
Payload = dict[str, float | int]

DAY_S = 86_400.0
_JOULES_PER_KWH = 3_600_000.0


def day_wave(now_s: float, *, peak_hour: float) -> float:
    """-1..1 over a 24 h cycle (UTC), 1 at `peak_hour`."""
    hours = (now_s % DAY_S) / 3600.0
    return math.cos(2 * math.pi * (hours - peak_hour) / 24.0)


def _clamp(value: float, low: float, high: float) -> float:
    return min(high, max(low, value))


class ValueModel(Protocol):
    def sample(self, now_s: float) -> Reading: ...


class _Clock:
    """Seconds since the previous sample; 0 on the first one and when the wall clock steps back."""

    def __init__(self) -> None:
        self._last: float | None = None

    def step(self, now_s: float) -> float:
        dt = 0.0 if self._last is None else max(0.0, now_s - self._last)
        self._last = now_s if self._last is None else max(self._last, now_s)
        return dt


class ClimateModel:
    """Indoor temperature/humidity sensor: ~21.5 °C with a day cycle peaking mid-afternoon, slow drift, noise."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._clock = _Clock()
        self._base_c = 21.5 + rng.uniform(-1.5, 1.5)
        self._swing_c = rng.uniform(1.0, 2.5)
        self._base_rh = rng.uniform(38.0, 55.0)
        self._drift_c = 0.0

    def sample(self, now_s: float) -> Reading:
        dt = self._clock.step(now_s)
        wave = day_wave(now_s, peak_hour=15.0)
        # Mean-reverting random walk: wanders by tenths of a degree over minutes, never runs away.
        self._drift_c += self._rng.gauss(0.0, 0.01 * math.sqrt(min(dt, 600.0))) - self._drift_c * min(dt / 1800, 1)
        self._drift_c = _clamp(self._drift_c, -1.0, 1.0)
        temperature = self._base_c + self._swing_c * wave + self._drift_c + self._rng.gauss(0.0, 0.03)
        # Relative humidity falls as the same air warms up (about 3 %RH per °C indoors).
        humidity = self._base_rh - 3.0 * (temperature - self._base_c) + self._rng.gauss(0.0, 0.4)
        return {'temperature': round(temperature, 2), 'humidity': round(_clamp(humidity, 15.0, 85.0), 1)}


class AcMeterModel:
    """Single-phase 230 V / 50 Hz meter on a load that follows the working day."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._clock = _Clock()
        self._base_a = rng.uniform(2.0, 8.0)
        self._load = 1.0
        self._energy_kwh = rng.uniform(100.0, 20_000.0)
        self._pf = rng.uniform(0.88, 0.97)

    def sample(self, now_s: float) -> Reading:
        dt = self._clock.step(now_s)
        rng = self._rng
        voltage = _clamp(230.0 + 2.5 * day_wave(now_s, peak_hour=4.0) + rng.gauss(0.0, 0.8), 218.0, 242.0)
        # Load wanders around its daily profile (appliances switching), pulled back within minutes.
        k = min(dt / 60.0, 1.0)
        self._load = _clamp(self._load + rng.gauss(0.0, 0.08 * math.sqrt(k)) + (1.0 - self._load) * 0.1 * k, 0.5, 1.6)
        current = max(
            0.05, self._base_a * (1.0 + 0.4 * day_wave(now_s, peak_hour=13.0)) * self._load + rng.gauss(0.0, 0.05)
        )
        power_factor = _clamp(self._pf + rng.gauss(0.0, 0.005), 0.7, 1.0)
        power = voltage * current * power_factor
        self._energy_kwh += power * dt / _JOULES_PER_KWH
        return {
            'voltage': round(voltage, 1),
            'current': round(current, 3),
            'power': round(power, 1),
            'power_factor': round(power_factor, 3),
            'energy_kwh': round(self._energy_kwh, 4),
            'frequency': round(_clamp(50.0 + rng.gauss(0.0, 0.015), 49.9, 50.1), 3),
        }


class DcMeterModel:
    """48 V battery bus: solar charges it by day, a steady load drains it at night; SOC sets the voltage."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._clock = _Clock()
        self._capacity_ah = rng.choice((100.0, 200.0, 400.0))
        self._solar_peak_a = self._capacity_ah * rng.uniform(0.12, 0.2)
        self._base_a = self._capacity_ah * rng.uniform(0.03, 0.06)
        self._soc = rng.uniform(40.0, 90.0)
        self._energy_kwh = rng.uniform(10.0, 5_000.0)

    def sample(self, now_s: float) -> Reading:
        dt = self._clock.step(now_s)
        rng = self._rng
        current = max(0.1, self._base_a * (1.0 + 0.3 * day_wave(now_s, peak_hour=19.0)) + rng.gauss(0.0, 0.1))
        charge = self._solar_peak_a * max(0.0, day_wave(now_s, peak_hour=12.5)) if self._soc < 99.5 else 0.0
        self._soc = _clamp(self._soc + (charge - current) * dt / 3600.0 / self._capacity_ah * 100.0, 5.0, 100.0)
        voltage = 46.8 + 0.06 * self._soc + (0.01 * charge - 0.01 * current) + rng.gauss(0.0, 0.03)
        power = voltage * current
        self._energy_kwh += power * dt / _JOULES_PER_KWH
        return {
            'voltage': round(voltage, 2),
            'current': round(current, 2),
            'power': round(power, 1),
            'energy_kwh': round(self._energy_kwh, 4),
            'battery_soc': round(self._soc, 1),
        }


_MODELS: dict[DeviceKind, type[ClimateModel | AcMeterModel | DcMeterModel]] = {
    'climate': ClimateModel,
    'ac_meter': AcMeterModel,
    'dc_meter': DcMeterModel,
}


def seed_for(device_id: str) -> int:
    """Stable per-device seed, so a device keeps its character across simulator runs."""
    return int.from_bytes(hashlib.sha256(device_id.encode()).digest()[:8], 'big')


class TelemetrySource:
    """One device's telemetry stream: flat payloads with `ts` (ms since epoch) and `seq` (1, 2, 3, ...)."""

    def __init__(self, kind: DeviceKind, *, seed: int) -> None:
        self.kind = kind
        self._model: ValueModel = _MODELS[kind](random.Random(seed))
        self._seq = 0

    @property
    def seq(self) -> int:
        """The last sequence number handed out (0 before the first payload)."""
        return self._seq

    def next_payload(self, now_s: float) -> Payload:
        self._seq += 1
        payload: Payload = {'ts': int(now_s * 1000), 'seq': self._seq}
        payload.update(self._model.sample(now_s))
        return payload
