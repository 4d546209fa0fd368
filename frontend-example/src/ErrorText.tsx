export function ErrorText({ message }: { message: string | null | undefined }) {
  if (!message) return null;
  return (
    <span className="error" role="alert">
      {message}
    </span>
  );
}
