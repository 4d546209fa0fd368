import { useMutation, useQuery } from "urql";
import { ErrorText } from "../ErrorText";
import { changeWithConsent } from "../consent";
import { errorField, errorMessage } from "../errors";
import { AppFormDocument, ConnectionFormDocument, EditConnectionDocument } from "../gql/graphql";
import { ConnectionForm, type FormValues } from "./ConnectionForm";

type Props = { connectionId: string; onSaved: () => void; onClose: () => void };

/**
 * Edits replace the whole connection: the form starts from the stored non-secret values and the
 * secrets must be entered again. For OAuth apps the change waits for consent in a popup.
 */
export function EditConnection({ connectionId, onSaved, onClose }: Props) {
  const [stored] = useQuery({ query: ConnectionFormDocument, variables: { id: connectionId } });
  const connection = stored.data?.connection;
  const [form] = useQuery({ query: AppFormDocument, variables: { key: connection?.appKey ?? "" }, pause: !connection });
  const [, edit] = useMutation(EditConnectionDocument);
  const app = form.data?.app;
  const loadError = stored.error ?? form.error;

  const save = async ({ name, fields }: FormValues) => {
    if (!app || !connection) return null;
    const outcome = await changeWithConsent(app.requiresConsent, async () => {
      const answer = await edit({ id: connectionId, input: { name, fields, version: connection.version } });
      return { error: answer.error, authorizationUrl: answer.data?.editConnection.authorizationUrl };
    });
    if (outcome.apiError) return { message: errorMessage(outcome.apiError), field: errorField(outcome.apiError) };
    if (outcome.consentError) return { message: `Not saved: ${outcome.consentError}` };
    onSaved();
    onClose();
    return null;
  };

  return (
    <section className="panel" aria-label="Edit connection">
      <h2>Edit {connection?.name}</h2>
      {loadError && <ErrorText message={errorMessage(loadError)} />}
      {stored.data && !connection && <ErrorText message="This connection no longer exists." />}
      {form.data && !app && <ErrorText message={`The app ${connection?.appKey} is no longer in the catalog.`} />}
      {connection && app && (
        <ConnectionForm
          fields={app.fields}
          initial={{
            name: connection.name,
            fields: Object.fromEntries(
              app.fields.map((field) => [field.key, field.secret ? "" : String(connection.fields[field.key] ?? "")]),
            ),
          }}
          submitLabel="Save"
          onSubmit={save}
          onClose={onClose}
        />
      )}
    </section>
  );
}
