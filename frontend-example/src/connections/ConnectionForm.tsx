import { useState, type FormEvent } from "react";
import { ErrorText } from "../ErrorText";
import type { AppFormFieldFragment } from "../gql/graphql";

/** A problem with a save; `field` is `name` or `fields.<key>` when the API names one. */
export type FormProblem = { message: string; field?: string };

export type FormValues = { name: string; fields: Record<string, string> };

type Props = {
  fields: AppFormFieldFragment[];
  initial: FormValues;
  submitLabel: string;
  onSubmit: (values: FormValues) => Promise<FormProblem | null>;
  onClose: () => void;
};

/**
 * The connection form drawn from the app's fields. Secret fields are password inputs that start
 * empty; only filled-in values are sent, since a save replaces the whole form.
 */
export function ConnectionForm({ fields, initial, submitLabel, onSubmit, onClose }: Props) {
  const [name, setName] = useState(initial.name);
  const [values, setValues] = useState(initial.fields);
  const [saving, setSaving] = useState(false);
  const [problem, setProblem] = useState<FormProblem | null>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setSaving(true);
    setProblem(null);
    const filled = Object.fromEntries(Object.entries(values).filter(([, value]) => value !== ""));
    setProblem(await onSubmit({ name: name.trim(), fields: filled }));
    setSaving(false);
  };

  const problemAt = (field: string) => (problem?.field === field ? problem.message : null);
  const knownFields = ["name", ...fields.map((field) => `fields.${field.key}`)];

  return (
    <form onSubmit={submit}>
      <div className="field">
        <label>
          Name
          <input required value={name} onChange={(e) => setName(e.target.value)} />
        </label>
        <ErrorText message={problemAt("name")} />
      </div>
      {fields.map((field) => (
        <div className="field" key={field.key}>
          <label>
            {field.label}
            <FieldInput
              field={field}
              value={values[field.key] ?? ""}
              onChange={(value) => setValues({ ...values, [field.key]: value })}
            />
          </label>
          {field.help && <span className="muted">{field.help}</span>}
          <ErrorText message={problemAt(`fields.${field.key}`)} />
        </div>
      ))}
      <div className="actions">
        <button type="submit" disabled={saving}>
          {saving ? "Saving..." : submitLabel}
        </button>
        <button type="button" onClick={onClose}>
          Close
        </button>
        {problem && !knownFields.includes(problem.field ?? "") && <ErrorText message={problem.message} />}
      </div>
    </form>
  );
}

type FieldInputProps = { field: AppFormFieldFragment; value: string; onChange: (value: string) => void };

function FieldInput({ field, value, onChange }: FieldInputProps) {
  if (field.choices.length > 0) {
    return (
      <select required={field.required} value={value} onChange={(e) => onChange(e.target.value)}>
        <option value="">Choose...</option>
        {field.choices.map((choice) => (
          <option key={choice}>{choice}</option>
        ))}
      </select>
    );
  }
  return (
    <input
      type={field.secret ? "password" : "text"}
      autoComplete={field.secret ? "new-password" : "off"}
      required={field.required}
      value={value}
      onChange={(e) => onChange(e.target.value)}
    />
  );
}
