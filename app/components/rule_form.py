"""The rule editor's form: one set of fields per condition type (no JSON typing), errors shown on their field.

`RuleForm.build()` returns a validated `RuleCreate`, or None after marking the fields that are wrong.
Composite conditions have any number of sub-conditions of the four stream types (`composite_form.py`).
"""

from __future__ import annotations

from typing import Any

from nicegui import ui
from pydantic import ValidationError

from app.components.composite_form import CompositeRows, scalar
from app.components.schedule_form import ScheduleRows
from app.models.alarm_notice import SEVERITIES
from app.models.rules import SCHEDULED_TYPES, RuleCreate, RulePublic

TYPES = {'threshold': 'Threshold', 'range': 'Range with hysteresis', 'comparison': 'Compare two keys',
         'rate': 'Rate of change', 'window': 'Statistic over a window', 'no_data': 'No data',
         'composite': 'Several conditions'}
OPS = ['>', '>=', '<', '<=', '==', '!=']
Field = ui.input | ui.number | ui.select | ui.toggle


def _number(label: str, value: float | None = None, **kwargs: Any) -> ui.number:
    return ui.number(label, value=value, **kwargs).props('outlined dense').classes('w-40')


def _text(label: str, value: str = '') -> ui.input:
    return ui.input(label, value=value).props('outlined dense').classes('w-48')


class RuleForm:
    def __init__(self, devices: dict[str, str], rule: RulePublic | None = None) -> None:
        self.fields: dict[str, Field] = {}
        data = rule.model_dump(mode='json') if rule else {}
        condition, scope, options = data.get('condition', {}), data.get('scope', {}), data.get('options', {})
        f = self.fields
        with ui.row().classes('w-full items-center gap-3 flex-wrap'):
            f['name'] = ui.input('Name', value=data.get('name', '')).props('outlined').classes('w-72') \
                .mark('rule-name')
            f['severity'] = ui.select(list(SEVERITIES), value=data.get('severity', 'major'), label='Severity') \
                .props('outlined dense').classes('w-40').mark('rule-severity')
            self.enabled = ui.switch('Enabled', value=data.get('enabled', True)).mark('rule-enabled')
        ui.label('Devices').classes('text-lg font-semibold')
        with ui.row().classes('w-full items-center gap-3 flex-wrap'):
            f['scope'] = ui.toggle({'all': 'All devices', 'device': 'One device', 'device_type': 'A device type'},
                                   value=scope.get('kind', 'all')).props('no-caps').mark('rule-scope')
            f['scope.device_id'] = ui.select(devices, value=scope.get('device_id'), label='Device') \
                .props('outlined dense').classes('w-56').mark('rule-device') \
                .bind_visibility_from(f['scope'], 'value', value='device')
            f['scope.device_type'] = _text('Device type', scope.get('device_type') or '').mark('rule-device-type') \
                .bind_visibility_from(f['scope'], 'value', value='device_type')
        ui.label('Condition').classes('text-lg font-semibold')
        f['type'] = ui.select(TYPES, value=condition.get('type', 'threshold'), label='Type') \
            .props('outlined dense').classes('w-64').mark('condition-type')
        self._condition_fields(condition)
        self._option_fields(options)
        self.error = ui.label().classes('text-negative').mark('rule-error')

    def _group(self, kind: str) -> ui.row:
        return ui.row().classes('w-full items-center gap-3 flex-wrap') \
            .bind_visibility_from(self.fields['type'], 'value', value=kind)

    def _condition_fields(self, c: dict[str, Any]) -> None:
        f = self.fields
        with self._group('threshold'):
            f['threshold.key'] = _text('Key', c.get('key', '')).mark('threshold-key')
            f['threshold.op'] = ui.select(OPS, value=c.get('op', '>'), label='Is').classes('w-24')
            f['threshold.value'] = _text('Value', str(c.get('value', ''))).mark('threshold-value')
        with self._group('range'):
            f['range.key'] = _text('Key', c.get('key', '')).mark('range-key')
            f['range.direction'] = ui.toggle({'high': 'High limit', 'low': 'Low limit'},
                                             value=c.get('direction', 'high')).props('no-caps')
            f['range.raise_at'] = _number('Raise at', c.get('raise_at')).mark('range-raise')
            f['range.clear_at'] = _number('Clear at', c.get('clear_at')).mark('range-clear')
        with self._group('comparison'):
            f['comparison.left'] = _text('Key', c.get('left', '')).mark('comparison-left')
            f['comparison.op'] = ui.select(OPS, value=c.get('op', '>'), label='Is').classes('w-24')
            f['comparison.right'] = _text('Other key', c.get('right', '')).mark('comparison-right')
            f['comparison.offset'] = _number('Plus offset', c.get('offset', 0))
        with self._group('rate'):
            f['rate.key'] = _text('Key', c.get('key', '')).mark('rate-key')
            f['rate.op'] = ui.select(OPS, value=c.get('op', '>'), label='Change per minute').classes('w-40')
            f['rate.per_minute'] = _number('Amount per minute', c.get('per_minute')).mark('rate-amount')
            f['rate.window_s'] = _number('Over seconds', c.get('window_s', 300))
        with self._group('window'):
            f['window.stat'] = ui.select(['avg', 'min', 'max', 'stddev', 'count'], value=c.get('stat', 'avg'),
                                         label='Statistic').classes('w-32')
            f['window.key'] = _text('Key', c.get('key', '')).mark('window-key')
            f['window.minutes'] = _number('Over minutes', c.get('minutes', 10))
            f['window.op'] = ui.select(OPS, value=c.get('op', '>'), label='Is').classes('w-24')
            f['window.value'] = _number('Value', c.get('value')).mark('window-value')
        with self._group('no_data'):
            f['no_data.key'] = _text('Key (empty: any data)', c.get('key') or '').mark('nodata-key')
            f['no_data.minutes'] = _number('Silent for minutes', c.get('minutes', 15)).mark('nodata-minutes')
        with ui.column().classes('w-full gap-2').bind_visibility_from(f['type'], 'value', value='composite'):
            with ui.row().classes('items-center gap-3'):
                mode = ui.toggle({'and': 'All true', 'or': 'Any true', 'weighted': 'Weighted score'},
                                 value=c.get('mode', 'and')).props('no-caps').mark('composite-mode')
                f['composite.mode'] = mode
                f['composite.min_score'] = _number('Score needed', c.get('min_score', 1)) \
                    .bind_visibility_from(f['composite.mode'], 'value', value='weighted').mark('composite-score')
            self.composite = CompositeRows(c if c.get('type') == 'composite' else {}, mode)

    def _option_fields(self, o: dict[str, Any]) -> None:
        f = self.fields
        ui.label('Noise control').classes('text-lg font-semibold')
        ui.label('Window and no-data rules are checked at each evaluation round: they raise when the condition '
                 'holds and clear when it no longer does.').classes('text-sm text-grey-8') \
            .bind_visibility_from(self.fields['type'], 'value', backward=lambda kind: kind in SCHEDULED_TYPES) \
            .mark('scheduled-rule-note')
        with ui.row().classes('w-full items-center gap-3 flex-wrap').bind_visibility_from(
                self.fields['type'], 'value', backward=lambda kind: kind not in SCHEDULED_TYPES):
            f['options.debounce_s'] = _number('True for s before raising', o.get('debounce_s', 0)).mark('debounce')
            f['options.clear_after_s'] = _number('False for s before clearing', o.get('clear_after_s', 0))
            f['options.clear_after_readings'] = _number('Or false readings', o.get('clear_after_readings', 0))
            f['options.cooldown_s'] = _number('Cooldown s after clear', o.get('cooldown_s', 0)).mark('cooldown')
            self.auto_clear = ui.switch('Clear automatically', value=o.get('auto_clear', True))
        with ui.row().classes('w-full items-start gap-3 flex-wrap'):
            self.scheduled = ui.switch('Only at certain times', value=bool(o.get('schedule'))).mark('scheduled')
            with ui.column().classes('gap-2').bind_visibility_from(self.scheduled, 'value'):
                self.schedule = ScheduleRows(o.get('schedule') or [], o.get('timezone'))

    def _v(self, name: str) -> Any:
        return self.fields[name].value

    def data(self) -> dict[str, Any]:
        """The form as the API's JSON (before validation)."""
        kind = str(self._v('type'))
        condition: dict[str, Any] = {'type': kind}
        if kind == 'composite':
            conditions, weights = self.composite.data()
            condition |= {'mode': self._v('composite.mode'), 'min_score': self._v('composite.min_score'),
                          'conditions': conditions}
            if self._v('composite.mode') == 'weighted':
                condition['weights'] = weights
        else:
            for name in self.fields:
                if name.startswith(f'{kind}.'):
                    value = self._v(name)
                    condition[name.split('.', 1)[1]] = str(value).strip() if isinstance(value, str) else value
            if kind == 'threshold':
                condition['value'] = scalar(condition['value'])
            if kind == 'no_data':
                condition['key'] = condition['key'] or None
        scope = {'kind': self._v('scope')}
        if scope['kind'] == 'device':
            scope['device_id'] = self._v('scope.device_id')
        elif scope['kind'] == 'device_type':
            scope['device_type'] = self._v('scope.device_type')
        options: dict[str, Any] = {name.split('.', 1)[1]: int(self._v(name) or 0) for name in self.fields
                                   if name.startswith('options.') and kind not in SCHEDULED_TYPES}
        options |= {'auto_clear': self.auto_clear.value, 'timezone': str(self.schedule.zone.value or 'UTC')}
        if self.scheduled.value:
            options['schedule'] = self.schedule.data()
        return {'name': self._v('name'), 'enabled': self.enabled.value, 'severity': self._v('severity'),
                'scope': scope, 'condition': condition, 'options': options}

    def build(self) -> RuleCreate | None:
        for field in self.fields.values():
            field.props(remove='error error-message')
        self.composite.clear_errors()
        self.schedule.clear_errors()
        self.error.set_text('')
        try:
            return RuleCreate.model_validate(self.data())
        except ValidationError as error:
            for problem in error.errors():
                self.show_error(self._field_for(problem['loc']), problem['msg'].removeprefix('Value error, '))
            return None

    def show_error(self, name: str | None, message: str) -> None:
        if name is not None and name.startswith('sub.'):
            _, index, part = name.split('.', 2)
            if self.composite.show_error(int(index), part, message):
                return
        if name is not None and name.startswith('schedule.'):
            where, _, part = name.removeprefix('schedule.').partition('.')
            if self.schedule.show_error(None if where == 'zone' else int(where), part, message):
                return
        field = self.fields.get(name or '')
        if field is None:
            self.error.set_text(message)
            return
        field.props(f'error error-message="{message.replace(chr(34), chr(39))}"')

    def _field_for(self, loc: tuple[int | str, ...]) -> str | None:
        parts = [str(part) for part in loc]
        kind = str(self._v('type'))
        if parts[:1] == ['condition']:
            rest = parts[2:]  # past the discriminator tag
            if kind == 'composite' and rest[:1] == ['conditions'] and len(rest) >= 4:
                return f'sub.{rest[1]}.{rest[-1]}'  # conditions, index, the sub-condition's type, field
            if kind == 'composite' and rest[:1] == ['weights'] and len(rest) >= 2:
                return f'sub.{rest[1]}.weight'
            if not rest:
                return {'range': 'range.clear_at'}.get(kind)
            return f'{kind}.{rest[-1]}'
        if parts[:1] == ['scope']:
            return 'scope.device_id' if self._v('scope') == 'device' else 'scope.device_type' \
                if self._v('scope') == 'device_type' else 'scope'
        if parts[:2] == ['options', 'schedule'] and len(parts) >= 4:
            return f'schedule.{parts[2]}.{parts[-1]}' if parts[-1] in ('days', 'start', 'end') \
                else f'schedule.{parts[2]}.days'
        if parts[:1] == ['options'] and len(parts) > 1:
            return f'options.{parts[1]}' if f'options.{parts[1]}' in self.fields else 'schedule.zone'
        return parts[0] if parts and parts[0] in self.fields else None
