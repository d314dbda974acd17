"""The rule editor's composite part: any number of sub-conditions, each a threshold, a comparison of two keys,
a range with hysteresis or a rate of change, added and removed row by row (with a weight when scored)."""

from __future__ import annotations

from typing import Any

from nicegui import ui

OPS = ['>', '>=', '<', '<=', '==', '!=']
KINDS = {'threshold': 'Key against a value', 'comparison': 'Key against another key',
         'range': 'Range with hysteresis', 'rate': 'Rate of change'}
FIELDS = {  # the model's field name → (label, kind of input)
    'threshold': [('key', 'Key', 'text'), ('op', 'Is', 'op'), ('value', 'Value', 'text')],
    'comparison': [('left', 'Key', 'text'), ('op', 'Is', 'op'), ('right', 'Other key', 'text'),
                   ('offset', 'Plus offset', 'number')],
    'range': [('key', 'Key', 'text'), ('direction', 'Limit', 'direction'), ('raise_at', 'Raise at', 'number'),
              ('clear_at', 'Clear at', 'number')],
    'rate': [('key', 'Key', 'text'), ('op', 'Change per minute', 'op'), ('per_minute', 'Amount per minute', 'number'),
             ('window_s', 'Over seconds', 'number')],
}
Input = ui.input | ui.number | ui.select | ui.toggle


def scalar(raw: object) -> object:
    """A number when the text reads as one, else the text (for == / != on text values)."""
    text = str(raw or '').strip()
    try:
        return float(text)
    except ValueError:
        return text


class SubCondition:
    def __init__(self, owner: CompositeRows, number: int, data: dict[str, Any], weight: float,
                 mode: ui.toggle) -> None:
        self.inputs: dict[str, dict[str, Input]] = {}
        mark = f'sub-{number}'  # rows are marked by the order they were added in, not their position
        with ui.card().classes('w-full p-2') as self.card, ui.row().classes('w-full items-center gap-3 flex-wrap'):
            self.kind = ui.select(KINDS, value=data.get('type', 'threshold'), label='Sub-condition') \
                .props('outlined dense').classes('w-56').mark(f'{mark}-kind')
            for kind, fields in FIELDS.items():
                with ui.row().classes('items-center gap-3').bind_visibility_from(self.kind, 'value', value=kind):
                    own = data if data.get('type', 'threshold') == kind else {}
                    self.inputs[kind] = {name: _input(label, how, own.get(name), name).mark(f'{mark}-{kind}-{name}')
                                         for name, label, how in fields}
            self.weight = ui.number('Weight', value=weight).props('outlined dense').classes('w-28') \
                .mark(f'{mark}-weight').bind_visibility_from(mode, 'value', value='weighted')
            ui.button(icon='delete', on_click=lambda: owner.remove(self)).props('flat round') \
                .tooltip('Remove this sub-condition').mark(f'{mark}-remove')

    def data(self) -> dict[str, Any]:
        kind = str(self.kind.value)
        out: dict[str, Any] = {'type': kind}
        for name, element in self.inputs[kind].items():
            value = element.value
            out[name] = str(value or '').strip() if isinstance(element, ui.input) else value
        if kind == 'threshold':
            out['value'] = scalar(out['value'])
        return out

    def element(self, name: str) -> Input | None:
        return self.inputs[str(self.kind.value)].get(name) or (self.weight if name == 'weight' else None)

    def clear_errors(self) -> None:
        for fields in self.inputs.values():
            for element in fields.values():
                element.props(remove='error error-message')


def _input(label: str, how: str, value: Any, name: str) -> Input:
    if how == 'op':
        return ui.select(OPS, value=value or '>', label=label).classes('w-28')
    if how == 'direction':
        return ui.toggle({'high': 'High', 'low': 'Low'}, value=value or 'high').props('no-caps')
    if how == 'number':
        default = {'offset': 0, 'window_s': 300}.get(name)
        return ui.number(label, value=default if value is None else value).props('outlined dense') \
            .classes('w-36')
    return ui.input(label, value='' if value is None else str(value)).props('outlined dense').classes('w-40')


class CompositeRows:
    """The rows, in order; `data()` gives the composite's JSON, `show_error` marks a row's field."""

    def __init__(self, condition: dict[str, Any], mode: ui.toggle) -> None:
        self.mode = mode
        self.rows: list[SubCondition] = []
        self.added = 0
        subs = condition.get('conditions') or [{}, {}]
        weights = condition.get('weights') or []
        self.column = ui.column().classes('w-full gap-2').mark('sub-conditions')
        for index, sub in enumerate(subs):
            self.add(sub, weights[index] if index < len(weights) else 1.0)
        ui.button('Add sub-condition', icon='add', on_click=lambda: self.add({}, 1.0)).props('outline') \
            .classes('min-h-[44px]').mark('add-sub')

    def add(self, data: dict[str, Any], weight: float) -> None:
        with self.column:
            self.rows.append(SubCondition(self, self.added, data, weight, self.mode))
        self.added += 1

    def remove(self, row: SubCondition) -> None:
        self.rows.remove(row)
        self.column.remove(row.card)

    def data(self) -> tuple[list[dict[str, Any]], list[Any]]:
        return [row.data() for row in self.rows], [row.weight.value for row in self.rows]

    def clear_errors(self) -> None:
        for row in self.rows:
            row.clear_errors()

    def show_error(self, index: int, name: str, message: str) -> bool:
        if not 0 <= index < len(self.rows):
            return False
        element = self.rows[index].element(name)
        if element is None:
            return False
        element.props(f'error error-message="{message.replace(chr(34), chr(39))}"')
        return True
