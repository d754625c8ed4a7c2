// The official openai npm SDK (4.x) against laded, changed only in its base
// URL: over the Unix socket (an http.Agent with socketPath) and over the
// TCP listener with a bearer key. Run by test_daemon_e2e_sdk.c:
//   node openai_sdk.cjs SOCKET PORT KEY      (NODE_PATH finds openai)
// The daemon runs the fake engine with the chatml template: greedy text
// "Once upon a time...".
'use strict';
const http = require('node:http');
const OpenAI = require('openai');

const [sock, port, key] = process.argv.slice(2);
const model = 'fake';
const messages = [{ role: 'user', content: 'Hi' }];

function check(ok, what, got) {
    if (!ok) {
        console.error(`FAIL ${what}: ${JSON.stringify(got)}`);
        process.exit(1);
    }
}

async function run(client, label) {
    const models = await client.models.list();
    check(models.data.some((m) => m.id === model), `${label} models.list`, models.data);

    const chat = await client.chat.completions.create({ model, messages, max_tokens: 8, seed: 1 });
    const c0 = chat.choices[0];
    check(c0.message.content === 'Once upo' && c0.finish_reason === 'length', `${label} chat`, chat);
    check(chat.usage.completion_tokens === 8 && chat.lookahead.steps > 0, `${label} chat usage`, chat);

    const stream = await client.chat.completions.create({
        model, messages, max_completion_tokens: 8, stream: true, stream_options: { include_usage: true },
    });
    let text = '', usage = null, finish = null;
    for await (const chunk of stream) {
        if (chunk.choices.length) {
            text += chunk.choices[0].delta.content || '';
            finish = chunk.choices[0].finish_reason || finish;
        }
        if (chunk.usage)
            usage = chunk.usage;
    }
    check(text === 'Once upo' && finish === 'length' && usage && usage.completion_tokens === 8,
          `${label} streamed chat`, { text, finish, usage });

    const comp = await client.completions.create({ model, prompt: 'Hi', max_tokens: 4, stop: ['zz'] });
    check(comp.choices[0].text === 'Once', `${label} completion`, comp);

    try {
        await client.chat.completions.create({ model, messages, n: 2 });
        check(false, `${label} n=2 accepted`, null);
    } catch (e) {
        check(e instanceof OpenAI.APIError && e.status === 400 && e.param === 'n', `${label} n=2 error`, e);
    }
    console.log(`ok ${label}`);
}

(async () => {
    await run(new OpenAI({ baseURL: 'http://lade/v1', apiKey: 'unused', maxRetries: 0,
                           httpAgent: new http.Agent({ socketPath: sock }) }), 'unix socket');
    await run(new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: key, maxRetries: 0 }), 'tcp');
    try {
        await new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'wrong', maxRetries: 0 }).models.list();
        check(false, 'wrong key accepted', null);
    } catch (e) {
        check(e instanceof OpenAI.AuthenticationError, 'wrong key error', e);
    }
    console.log('ok wrong key refused');
})().catch((e) => {
    console.error('FAIL', e);
    process.exit(1);
});
