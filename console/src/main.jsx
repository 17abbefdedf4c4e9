import { createRoot } from 'react-dom/client';
import { Provider } from 'react-redux';
import { BrowserRouter } from 'react-router-dom';

import { App } from './App.jsx';
import { makeStore } from './store.js';
import styles from './styles.css';

// The bundle lives at <prefix>/dist/main.js, so the console's prefix is the folder above it:
// the same build works under /console, /hasura/console or /.
const basename = new URL('..', import.meta.url).pathname.replace(/\/$/, '');

const style = document.createElement('style');
style.textContent = styles;
document.head.appendChild(style);

const { store, telemetry } = makeStore();
// For a person (or a test) in the devtools: what the client has captured, sent and dropped,
// and the store to dispatch to by hand.
window.__consoleTelemetry = telemetry;
window.__consoleStore = store;

createRoot(document.getElementById('root')).render(
  <Provider store={store}>
    <BrowserRouter basename={basename}>
      <App basename={basename} telemetry={telemetry} />
    </BrowserRouter>
  </Provider>,
);
