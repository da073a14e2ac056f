// What a user has chosen or typed in a part of a page that live data redraws (innerHTML), put back
// after the redraw: each named field's value (by its form's id), which <details> are open, and which
// field has the focus.

type Field = HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;

/** Takes what `scope` holds now; the function returned puts it back into the redrawn `scope`. */
export function keepForms(scope: HTMLElement): () => void {
  const values = [...scope.querySelectorAll<Field>("form [name]")].map((el) => [el.form?.id ?? "", el.name, el.value] as const);
  const open = [...scope.querySelectorAll<HTMLDetailsElement>("details[id]")].map((d) => [d.id, d.open] as const);
  const active = document.activeElement as Field | null;
  const focused = active && scope.contains(active) && active.form ? [active.form.id, active.name] as const : null;
  return () => {
    for (const [id, isOpen] of open) {
      const d = scope.querySelector<HTMLDetailsElement>(`details#${id}`);
      if (d) d.open = isOpen;
    }
    for (const [form, name, value] of values) {
      const el = scope.querySelector<Field>(`form#${form} [name="${name}"]`);
      if (el) el.value = value;
    }
    if (focused) scope.querySelector<HTMLElement>(`form#${focused[0]} [name="${focused[1]}"]`)?.focus();
  };
}
