import { useState } from "react";
import { useMutation, useQuery } from "urql";
import { ErrorText } from "../ErrorText";
import { changeWithConsent } from "../consent";
import { errorField, errorMessage } from "../errors";
import { AppFormDocument, CreateConnectionDocument } from "../gql/graphql";
import { AppPicker } from "./AppPicker";
import { ConnectionForm, type FormValues } from "./ConnectionForm";

type Props = { teamId: string; onSaved: () => void; onClose: () => void };

/** Pick an app, fill its form, save; OAuth apps then ask for consent in a popup. */
export function CreateConnection({ teamId, onSaved, onClose }: Props) {
  const [appKey, setAppKey] = useState<string | null>(null);
  const [{ data, error }] = useQuery({ query: AppFormDocument, variables: { key: appKey ?? "" }, pause: !appKey });
  const [, create] = useMutation(CreateConnectionDocument);
  const [awaitingConsent, setAwaitingConsent] = useState<string | null>(null);
  const app = appKey ? data?.app : null;

  const save = async ({ name, fields }: FormValues) => {
    if (!app) return null;
    const outcome = await changeWithConsent(app.requiresConsent, async () => {
      const answer = await create({ input: { teamId, app: app.key, name, fields } });
      return { error: answer.error, authorizationUrl: answer.data?.createConnection.authorizationUrl };
    });
    if (outcome.apiError) return { message: errorMessage(outcome.apiError), field: errorField(outcome.apiError) };
    onSaved();
    if (outcome.consentError) {
      // The connection exists now, waiting for consent; saving again would make a second one.
      setAwaitingConsent(outcome.consentError);
      return null;
    }
    onClose();
    return null;
  };

  return (
    <section className="panel" aria-label="New connection">
      <h2>New connection{app && `: ${app.name}`}</h2>
      {!appKey && <AppPicker onPick={setAppKey} />}
      {error && <ErrorText message={errorMessage(error)} />}
      {app && !awaitingConsent && (
        <ConnectionForm
          fields={app.fields}
          initial={{
            name: app.name,
            fields: Object.fromEntries(app.fields.map((field) => [field.key, field.default ?? ""])),
          }}
          submitLabel="Save"
          onSubmit={save}
          onClose={onClose}
        />
      )}
      {awaitingConsent && (
        <div className="actions">
          <ErrorText message={`Saved, but not connected: ${awaitingConsent}`} />
          <span className="muted">Use Reauthorize in the list to try again.</span>
          <button type="button" onClick={onClose}>
            Close
          </button>
        </div>
      )}
    </section>
  );
}
